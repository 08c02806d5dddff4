"""Sample quality: FD, KID and precision/recall in known relations; the attribute network; the FID path."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vaetui.metrics import features as attrnet
from vaetui.metrics import fidelity
from vaetui.data.synthetic import FACTORS, SyntheticFaces
from vaetui.errors import VaeError

CENTRES = np.random.default_rng(0).standard_normal((8, 16)) * 4


def mixture(n, modes=range(8), noise=0.5, seed=1):
    rng = np.random.default_rng(seed)
    return CENTRES[rng.choice(list(modes), n)] + noise * rng.standard_normal((n, 16))


def test_a_set_against_itself_is_zero_and_shifts_order_by_size():
    real = mixture(1500)
    assert fidelity.frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    mean, std = fidelity.kid(real, mixture(1500, seed=2))
    assert abs(mean) < 3 * std + 1e-9  # unbiased: zero within its spread for one distribution
    fds = [fidelity.frechet_distance(real, mixture(1500, seed=2) + s) for s in (0.0, 0.5, 1.0, 2.0)]
    kids = [fidelity.kid(real, mixture(1500, seed=2) + s)[0] for s in (0.0, 0.5, 1.0, 2.0)]
    assert fds == sorted(fds) and kids == sorted(kids)
    # the closed form for two Gaussians with the same covariance: the squared distance of the means
    a = np.random.default_rng(3).standard_normal((20000, 2))
    assert fidelity.frechet_distance(a, a + [3.0, 4.0]) == pytest.approx(25.0, rel=0.01)


def test_precision_and_recall_separate_missing_modes_from_noisy_samples():
    real = mixture(1500)
    half = fidelity.precision_recall(real, mixture(1500, modes=range(4), seed=2))
    noisy = fidelity.precision_recall(real, mixture(1500, noise=2.0, seed=2))
    same = fidelity.precision_recall(real, mixture(1500, seed=2))
    assert half[1] < 0.6 * same[1] and half[0] > 0.8 * same[0]  # half the modes: recall drops, precision stays
    assert noisy[0] < 0.3 * same[0] and noisy[1] > 0.8 * same[1]  # noisy: precision drops, recall stays


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def small_net(request):
    """Trained in fp32 and in bf16 (where the CPU has it natively it trains so: the same protocol must hold)."""
    train = SyntheticFaces((32, 32), seed=0, split="train", length=2048)
    protocol = {**attrnet.PROTOCOL, "images": 2048, "epochs": 3, "batch": 64}
    return attrnet.train_attribute_net(train, protocol=protocol, precision=request.param)


def blurred(split, sigma):
    k = torch.arange(-3, 4, dtype=torch.float32)
    w = torch.exp(-(k**2) / (2 * sigma**2))
    w = (w / w.sum()).view(1, 1, 1, 7).repeat(3, 1, 1, 1)

    def images(idx):
        x = split.images(idx).float() / 255
        x = F.conv2d(F.pad(x, (3, 3, 0, 0), mode="replicate"), w, groups=3)
        return F.conv2d(F.pad(x, (0, 0, 3, 3), mode="replicate"), w.transpose(2, 3), groups=3)

    return images


def test_attribute_features_rank_blur_in_order(small_net):
    test = SyntheticFaces((32, 32), seed=0, split="test")
    real = attrnet.features(small_net, test.images, 600)
    other = attrnet.features(small_net, lambda idx: test.images(np.asarray(idx) + 600), 600)
    fds = [fidelity.frechet_distance(real, other)]
    for sigma in (1.0, 2.0, 4.0):
        fds.append(fidelity.frechet_distance(real, attrnet.features(small_net, blurred(test, sigma), 600)))
    assert fds == sorted(fds) and fds[-1] > 3 * fds[0]


def test_the_attribute_net_learns_the_factors(small_net):
    test = SyntheticFaces((32, 32), seed=0, split="test")
    idx = np.arange(256)
    with torch.no_grad():
        pred = small_net(test.images(idx).float() / 255)
    target, _ = attrnet.labels_of(test, idx)
    baseline = ((target - target.mean(0)) ** 2).mean(0)
    error = ((pred - target) ** 2).mean(0)
    for name in ("lighting", "background"):  # factors that move many pixels
        k = FACTORS.index(name)
        assert float(error[k]) < 0.5 * float(baseline[k]), name


def test_the_attribute_net_is_cached_per_dataset(tmp_path, monkeypatch):
    from vaetui.config.settings import DataConfig

    monkeypatch.setenv("VAETUI_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(attrnet, "PROTOCOL", {**attrnet.PROTOCOL, "images": 64, "epochs": 1, "batch": 32})
    cfg = DataConfig(size=(32, 32))
    calls = []
    real_train = attrnet.train_attribute_net
    monkeypatch.setattr(attrnet, "train_attribute_net", lambda *a, **k: calls.append(1) or real_train(
        *a, protocol=attrnet.PROTOCOL, precision=k.get("precision", "fp32")))
    split = SyntheticFaces((32, 32), seed=0, split="train", length=64)
    first = attrnet.attribute_net(cfg, split)
    second = attrnet.attribute_net(cfg, split)
    assert calls == [1]
    x = split.images(np.arange(4)).float() / 255
    with torch.no_grad():
        assert torch.equal(first.features(x), second.features(x))
    assert attrnet.dataset_key(cfg) != attrnet.dataset_key(DataConfig(size=(32, 32), seed=1))
    # a network trained in bf16 is another network; one trained in fp32 keeps the key it had before precision
    # was part of it (the same hash of the same fields), so a cached fp32 network is not trained again
    import hashlib
    import json

    before = {"source": cfg.source, "root": None, "seed": cfg.seed, "size": [32, 32], "geometry": cfg.geometry,
              "protocol": attrnet.PROTOCOL}
    assert attrnet.dataset_key(cfg) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert attrnet.dataset_key(cfg, "bf16") != attrnet.dataset_key(cfg)
    (path,) = (tmp_path / "features").glob("attrnet-*.pt")
    path.write_bytes(b"damaged")
    attrnet.attribute_net(cfg, split)
    assert calls == [1, 1]  # a damaged cache is trained again, not trusted
    other = "bf16" if attrnet.native_precision() == "fp32" else "fp32"
    attrnet.attribute_net(cfg, split, precision=other)
    assert calls == [1, 1, 1] and len(list((tmp_path / "features").glob("attrnet-*.pt"))) == 2


def test_fid_from_a_local_weights_file(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.raises(VaeError, match="no such file.*--inception-weights"):
        attrnet.InceptionFeatures(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not weights")
    with pytest.raises(VaeError, match="could not be loaded"):
        attrnet.InceptionFeatures(tmp_path / "junk.pth")
    # A file with Inception-v3's layout (random weights: no network here to fetch the real ones).
    monkeypatch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    weights = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    monkeypatch.undo()
    torch.save(weights, tmp_path / "inception.pth")
    net = attrnet.InceptionFeatures(tmp_path / "inception.pth")
    test = SyntheticFaces((32, 32), seed=0, split="test")
    feats = attrnet.features(net, test.images, 8, batch=4)
    assert feats.shape == (8, 2048) and np.isfinite(feats).all()
    assert fidelity.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-4)


class _RunsCode:
    """Unpickling this object runs code: it touches the file named in its argument."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_inception_weights_file_never_runs_code(tmp_path):
    """A crafted --inception-weights file is refused, and nothing inside it runs (torch-fidelity itself would
    torch.load it with weights_only=False)."""
    marker = tmp_path / "ran"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "payload": _RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(VaeError, match="could not be loaded.*--inception-weights"):
        attrnet.InceptionFeatures(tmp_path / "evil.pth")
    assert not marker.exists()
    # Not a state dict: a list of tensors loads safely but is still not weights.
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(VaeError, match="not a state dict"):
        attrnet.InceptionFeatures(tmp_path / "list.pth")
    assert not marker.exists()


def test_a_collapsed_decoder_has_zero_recall():
    """Squared distances by expansion gave identical samples k-NN radii of rounding noise (~4e-9 here), wide
    enough to cover real points 1e-6 away in every feature: recall 0.93 for a decoder that draws one image."""
    rng = np.random.default_rng(1)
    v = rng.normal(size=256) * 30 + 100
    fake = np.repeat(v[None], 200, axis=0)
    real = v[None] + rng.normal(size=(200, 256)) * 1e-6
    precision, recall = fidelity.precision_recall(real, fake, k=5)
    assert recall == 0.0 and precision == 1.0
