import numpy as np
import torch

from vaetui.data import open_split
from vaetui.config.settings import DataConfig
from vaetui.data.synthetic import ATTRIBUTES, FACTORS, SyntheticFaces, face_attributes, uniforms


def test_images_are_a_function_of_index():
    ds = SyntheticFaces((40, 36), seed=3)
    a = ds.images([5, 9, 11])
    b = ds.images([11, 2, 5])
    assert a.dtype == torch.uint8 and a.shape == (3, 3, 40, 36)
    assert torch.equal(a[0], b[2]) and torch.equal(a[2], b[0])
    assert not torch.equal(a[0], a[1])


def test_hash_is_stable_across_calls_and_batches():
    u1 = uniforms(0, np.arange(10), 4)
    u2 = uniforms(0, np.array([7]), 4)
    assert np.array_equal(u1[7], u2[0])
    assert (u1 >= 0).all() and (u1 < 1).all()


def test_images_are_identical_in_a_fresh_process():
    import subprocess, sys

    code = "from vaetui.data.synthetic import SyntheticFaces as S; import hashlib; " \
        "print(hashlib.sha256(S((48, 40), seed=5).images(range(16)).numpy().tobytes()).hexdigest())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    import hashlib

    here = hashlib.sha256(SyntheticFaces((48, 40), seed=5).images(range(16)).numpy().tobytes()).hexdigest()
    assert other == here


def test_splits_and_seeds_differ():
    train = SyntheticFaces((32, 32), split="train").images([0])
    test = SyntheticFaces((32, 32), split="test").images([0])
    other = SyntheticFaces((32, 32), seed=1).images([0])
    assert not torch.equal(train, test) and not torch.equal(train, other)


def test_any_size_including_seed():
    x = SyntheticFaces((218, 178)).images(np.arange(2))
    assert x.shape == (2, 3, 218, 178)


def test_factors_and_attributes_agree():
    ds = SyntheticFaces((32, 32))
    idx = np.arange(2000)
    f = ds.factors(idx)
    assert set(f) == set(FACTORS) and len(FACTORS) >= 10
    attrs = ds.attributes(idx).numpy()
    assert attrs.shape == (2000, len(ATTRIBUTES)) and len(ATTRIBUTES) >= 8
    col = {n: attrs[:, i] for i, n in enumerate(ATTRIBUTES)}
    hair = col["Black_Hair"].astype(int) + col["Blond_Hair"] + col["Brown_Hair"] + col["Gray_Hair"]
    assert (hair <= 1).all()
    assert not (col["Bald"] & (hair == 1)).any()
    # Every attribute occurs, none is always on.
    assert (attrs.mean(0) > 0.02).all() and (attrs.mean(0) < 0.98).all()
    assert np.array_equal(face_attributes(f), attrs)


def test_face_is_drawn_in_skin_tone_at_the_centre():
    ds = SyntheticFaces((64, 64))
    idx = np.arange(64)
    x = ds.images(idx).float() / 255
    f = ds.factors(idx)
    # Cheek pixel (below the eyes, beside the nose): darker skin tone -> darker pixel.
    cheek = x[:, :, 36, 24].mean(1).numpy()
    corr = np.corrcoef(cheek, f["skin_tone"])[0, 1]
    assert corr < -0.6


def test_open_split_uses_dataset_size():
    split = open_split(DataConfig(size=(32, 32), dataset_size=100), "train")
    assert len(split) == 100
    assert len(open_split(DataConfig(size=(32, 32)), "valid")) > 100
