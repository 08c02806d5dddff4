import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaetui.config.settings import DataConfig
from vaetui.data import open_split
from vaetui.data.cache import cache_dir
from vaetui.data.decode import UnreadableImage, load_rgb
from fakes import make_fake_celeba, make_messy_folder, truncated_png
from vaetui.errors import DataError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAETUI_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    make_fake_celeba(root, n=200, corrupt=4)
    return root


def test_fake_celeba_files_have_the_published_formats(celeba):
    folder = celeba / "celeba"
    attr = (folder / "list_attr_celeba.txt").read_text().splitlines()
    assert attr[0] == "200" and len(attr[1].split()) == 40 and attr[1].split()[0] == "5_o_Clock_Shadow"
    assert attr[2].startswith("000001.jpg ") and set(attr[2].split()[1:]) <= {"-1", "1"}
    bbox = (folder / "list_bbox_celeba.txt").read_text().splitlines()
    assert bbox[1].split() == ["image_id", "x_1", "y_1", "width", "height"]
    land = (folder / "list_landmarks_align_celeba.txt").read_text().splitlines()
    assert len(land[1].split()) == 10 and len(land[2].split()) == 11
    assert (folder / "identity_CelebA.txt").read_text().splitlines()[0].split()[0] == "000001.jpg"
    with Image.open(folder / "img_align_celeba" / "000001.jpg") as im:
        assert im.size == (178, 218)


@pytest.mark.parametrize("level", ["root", "celeba"])
def test_celeba_splits_attributes_and_corrupt_files(celeba, level):
    root = celeba if level == "root" else celeba / "celeba"
    cfg = DataConfig(source="celeba", root=str(root), size=(218, 178))
    train, valid, test = (open_split(cfg, s) for s in ("train", "valid", "test"))
    total_skipped = len(train.skipped) + len(valid.skipped) + len(test.skipped)
    assert total_skipped == 4
    assert len(train) + len(valid) + len(test) == 196
    assert len(train) == 160 - len(train.skipped)
    x = train.images([0, 3])
    assert x.dtype == torch.uint8 and x.shape == (2, 3, 218, 178)
    # Same pixels as decoding the JPEG directly.
    with Image.open(celeba / "celeba" / "img_align_celeba" / train.files[3]) as im:
        direct = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(x[1], direct)
    attrs = train.attributes(np.arange(len(train)))
    assert attrs.shape == (len(train), 40) and attrs.dtype == torch.bool
    table = {}
    lines = (celeba / "celeba" / "list_attr_celeba.txt").read_text().splitlines()
    header = lines[1].split()
    for line in lines[2:]:
        name, *values = line.split()
        table[name] = [v == "1" for v in values]
    assert train.attribute_names == header
    for i, name in enumerate(train.files):  # every cell, against the file
        assert attrs[i].tolist() == table[name], name
    assert train.identity is not None and (train.identity > 0).all()
    log = train.cache.log if train.skipped else test.cache.log
    assert log.exists() and "jpg" in log.read_text()


def test_celeba_64_protocol_and_dataset_size(celeba):
    cfg = DataConfig(source="celeba", root=str(celeba), size=(64, 64), geometry="crop", dataset_size=50)
    train = open_split(cfg, "train")
    assert train.images([0]).shape == (1, 3, 64, 64)
    assert len(train) <= 50 and train.files[0] == "000001.jpg"


def test_cache_is_reused_and_rebuilt_when_files_change(celeba, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(celeba, root)
    cfg = DataConfig(source="celeba", root=str(root), size=(32, 32))
    first = open_split(cfg, "valid")
    decoded = []
    again = open_split(cfg, "valid", progress=lambda done, total, what: decoded.append(what))
    assert decoded == []  # nothing was decoded: the cache was reused
    assert torch.equal(again.images(np.arange(len(again))), first.images(np.arange(len(first))))
    target = root / "celeba" / "img_align_celeba" / first.files[0]
    Image.new("RGB", (178, 218), (255, 0, 0)).save(target)
    os.utime(target, (1, 1))
    changed = open_split(cfg, "valid")
    assert changed.cache.path != first.cache.path
    assert changed.images([0])[:, 0].float().mean() > 250  # the new red image


def test_interrupted_cache_build_is_never_used(celeba, monkeypatch):
    import vaetui.data.cache as cache

    cfg = DataConfig(source="celeba", root=str(celeba), size=(40, 40))
    calls = {"n": 0}
    real = cache._decode_chunk

    def dies(args):
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "_decode_chunk", dies)
    with pytest.raises(KeyboardInterrupt):
        cache.build_or_open(celeba / "celeba" / "img_align_celeba", [f"{i:06d}.jpg" for i in range(1, 100)],
                            (40, 40), "native", "celeba-train", workers=1)
    assert not list(cache_dir().glob("*.u8")) and not list(cache_dir().glob("*.tmp"))
    monkeypatch.setattr(cache, "_decode_chunk", real)
    assert len(open_split(cfg, "train")) > 0


def test_truncated_png_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(truncated_png())
    assert len(truncated_png()) == 83
    with pytest.raises(UnreadableImage):
        load_rgb(str(path), (32, 32))
    # And in a fresh process through the whole loader, so a crash would show as a signal.
    code = ("from vaetui.data.decode import load_rgb, UnreadableImage\n"
            f"try:\n    load_rgb({str(path)!r}, (32, 32))\nexcept UnreadableImage:\n    print('skipped')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "skipped"


def test_messy_folder(tmp_path):
    root = make_messy_folder(tmp_path / "messy", n=40)
    cfg = DataConfig(source="folder", root=str(root), size=(48, 40))
    splits = {s: open_split(cfg, s) for s in ("train", "valid", "test")}
    assert sum(len(s) for s in splits.values()) == 40
    assert sum(len(s.skipped) for s in splits.values()) == 4
    x = splits["train"].images(np.arange(len(splits["train"])))
    assert x.shape[1:] == (3, 48, 40)
    # Grayscale images come out gray (equal channels), colour ones coloured.
    gray = [(x[i, 0] == x[i, 1]).all() and (x[i, 1] == x[i, 2]).all() for i in range(len(x))]
    assert any(gray) and not all(gray)


def test_folder_attributes_csv(tmp_path):
    root = make_messy_folder(tmp_path / "m", n=20)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("face*"))
    (root / "attributes.csv").write_text("filename,Smiling,Young\n" + "".join(f"{f},1,{i % 2}\n" for i, f in enumerate(files)))
    split = open_split(DataConfig(source="folder", root=str(root), size=(32, 32)), "train")
    attrs = split.attributes(np.arange(len(split)))
    assert split.attribute_names == ["Smiling", "Young"] and attrs[:, 0].all()


def test_split_is_stable_when_images_are_added(tmp_path):
    from vaetui.data.folder import load_index

    root = make_messy_folder(tmp_path / "s", n=30)
    before = load_index(root).files
    Image.new("RGB", (50, 50)).save(root / "zzz-new.png")
    after = load_index(root).files
    for split in before:
        assert set(before[split]) <= set(after[split])


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "no img_align_celeba"),
    (lambda p: (p / "celeba" / "img_align_celeba").mkdir(parents=True), "list_eval_partition.txt is missing"),
])
def test_celeba_errors_name_the_problem(tmp_path, setup, message):
    root = tmp_path / "c"
    setup(root)
    with pytest.raises(DataError, match=message):
        open_split(DataConfig(source="celeba", root=str(root), size=(32, 32)), "train")


def test_partition_disagreeing_with_images_is_an_error(celeba, tmp_path):
    import shutil

    root = tmp_path / "p"
    shutil.copytree(celeba, root)
    (root / "celeba" / "img_align_celeba" / "000010.jpg").unlink()
    with pytest.raises(DataError, match="000010.jpg"):
        open_split(DataConfig(source="celeba", root=str(root), size=(32, 32)), "train")


def test_cli_info_preview_and_training_on_celeba(celeba, tmp_path):
    env = {**os.environ}
    base = [sys.executable, "-m", "vaetui"]
    out = subprocess.run([*base, "data", "info", "--data", "celeba", "--data-root", str(celeba)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "train" in out.stdout and "Smiling" in out.stdout and "not built" in out.stdout
    out = subprocess.run([*base, "data", "preview", "--data", "celeba", "--data-root", str(celeba), "--out",
                          str(tmp_path / "g.png")], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and (tmp_path / "g.png").exists()
    assert out.stderr.count("unreadable images") == 1  # reported once
    out = subprocess.run([*base, "train", "--preset", "tiny", "--data", "celeba", "--data-root", str(celeba),
                          "--size", "32", "--max-steps", "3", "--batch-size", "16", "--runs-dir", str(tmp_path / "runs"),
                          "--log-format", "json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert '"finished"' in out.stdout


# ---------------------------------------------------------------------------- the cache under stress (issue "Trust", 6)
BUILD = r"""
import os, sys, time
from pathlib import Path
import vaetui.data.cache as cache
folder, marker, count_file, delay = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
real = cache._decode_chunk
def counted(args):
    with open(count_file, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    marker.touch()
    time.sleep(delay)
    return real(args)
cache._decode_chunk = counted
files = sorted(p.name for p in folder.iterdir())
Path(sys.argv[5] + f".ready-{os.getpid()}").touch()  # at the start line
while not Path(sys.argv[5]).exists():  # start together
    time.sleep(0.005)
c = cache.build_or_open(folder, files, (32, 32), "native", "race", workers=1)
print(len(c.good))
"""


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_interrupted_cache_build_leaves_nothing_behind(celeba, tmp_path):
    """A build killed mid-way leaves its full-size temp file; the next build removes it."""
    images = celeba / "celeba" / "img_align_celeba"
    go = tmp_path / "go"
    go.touch()
    proc = subprocess.Popen([sys.executable, "-c", BUILD, str(images), str(tmp_path / "m"), str(tmp_path / "n"), "30",
                             str(go)], env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "m").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert _hidden(cache_dir()), "the killed build left no temp file: the test did not interrupt it"
    from vaetui.data import cache

    files = sorted(p.name for p in images.iterdir())
    built = cache.build_or_open(images, files, (32, 32), "native", "race", workers=1)
    assert len(built.good) == len(files) - 4
    assert _hidden(cache_dir()) == []


def test_two_processes_building_one_cache_decode_it_once(celeba, tmp_path):
    """Two processes (two ranks, the TUI and the CLI) asking for the same cache: one decodes, the other waits."""
    images = celeba / "celeba" / "img_align_celeba"
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(images), str(tmp_path / "m"), str(tmp_path / "n"),
                               "0.05", str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < 2:  # both are waiting at the start line
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a builder never got ready"
        time.sleep(0.02)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0].strip() == outs[1][0].strip() == str(200 - 4)
    decoders = set((tmp_path / "n").read_text().split())
    chunks = len((tmp_path / "n").read_text().split())
    assert len(decoders) == 1 and chunks == -(-200 // 64)


def test_damaged_cache_metadata_means_rebuild_not_traceback(celeba):
    cfg = DataConfig(source="celeba", root=str(celeba), size=(24, 24))
    first = open_split(cfg, "valid")
    meta = first.cache.path.with_suffix(".json")
    meta.write_text('{"files": 20, "good": [0, 1,')  # cut off mid-write by an older vaetui
    again = open_split(cfg, "valid")
    assert len(again) == len(first) and torch.equal(again.images([0]), first.images([0]))


def test_data_info_reports_what_the_cache_skipped(celeba):
    cfg = DataConfig(source="celeba", root=str(celeba), size=(32, 32))
    for s in ("train", "valid", "test"):
        open_split(cfg, s)
    out = subprocess.run([sys.executable, "-m", "vaetui", "data", "info", "--data", "celeba", "--data-root",
                          str(celeba), "--size", "32"], capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 0, out.stderr
    assert "unreadable skipped" in out.stdout and ".skipped.txt" in out.stdout


def test_an_image_replaced_with_its_mtime_kept_is_decoded_again(celeba, tmp_path):
    """`cp -p`, `rsync -t`, `tar x`: a same-size image with the old mtime kept its stale decode. And the cache it
    replaces is removed (nothing asks for it again)."""
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(celeba, root)
    cfg = DataConfig(source="celeba", root=str(root), size=(32, 32))
    first = open_split(cfg, "valid")
    folder = root / "celeba" / "img_align_celeba"
    a, b = folder / first.files[0], folder / first.files[1]
    # A different image of exactly the same size, its times carried over as `cp -p` does.
    data = bytearray(a.read_bytes())
    other = Image.open(b).convert("RGB").resize(Image.open(a).size)
    stand_in = tmp_path / "stand-in.jpg"
    for quality in range(95, 5, -1):  # a JPEG of the other face with exactly a's byte count
        other.save(stand_in, quality=quality)
        if stand_in.stat().st_size <= len(data):
            break
    replaced = stand_in.read_bytes().ljust(len(data), b"\0")  # JPEG readers stop at EOI: padding is ignored
    st = a.stat()
    a.write_bytes(replaced)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (a.stat().st_size, a.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    again = open_split(cfg, "valid")
    assert again.cache.path != first.cache.path
    assert torch.equal(again.images([0]), torch.as_tensor(load_rgb(str(a), (32, 32), "native")).unsqueeze(0))
    assert not torch.equal(again.images([0]), first.images([0]))
    assert not first.cache.path.exists()  # the superseded cache is gone
    assert again.cache.path.exists()
