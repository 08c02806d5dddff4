"""The packaged demo run: listed everywhere, read-only, and a model that really reconstructs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from vaetui.models import latent
from vaetui.runs.checkpoint import load_model
from vaetui.data import open_split
from vaetui.metrics.likelihood import psnr
from vaetui.runs.store import RunStore


def test_demo_is_listed_read_only_from_any_directory(tmp_path):
    store = RunStore(tmp_path / "empty")
    assert store.names() == ["demo"]
    info = store.open("demo").info()
    assert info.read_only and info.status == "finished" and info.best_valid is not None
    size = sum(p.stat().st_size for p in store.open("demo").path.rglob("*") if p.is_file())
    assert size <= 8 * 2**20


def test_demo_reconstructions_beat_the_mean_image_by_6_db():
    run = RunStore(include_demo=True).open("demo")
    model, config, _, _ = load_model(run)
    test = open_split(config.data, "test")
    x = test.images(np.arange(256))
    recon, _ = latent.reconstruct(model, x)
    train = open_split(config.data, "train")
    mean = train.images(np.arange(2048)).float().mean(0, keepdim=True) / 255.0
    ours = psnr(recon, x)
    baseline = psnr(mean.expand(len(x), -1, -1, -1), x)
    assert ours - baseline >= 6.0, (ours, baseline)


def test_demo_twin_and_no_resume(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vaetui", "sample", "demo", "--n", "8", "--out", str(tmp_path / "d.png")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-m", "vaetui", "train", "--resume", "demo"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode != 0 and "read-only" in out.stderr


def test_psnr_relations():
    x = torch.rand(2, 3, 8, 8)
    assert psnr(x, x) == 100.0
    assert psnr(x, (x + 0.01).clamp(0, 1)) > psnr(x, (x + 0.1).clamp(0, 1))


def test_the_demo_ships_the_eval_its_screens_show():
    """The generate and latent screens read the newest stored eval: the read-only demo carries the one its build
    stored, under its own name."""
    from vaetui.ui.screens.explore.generate import quality_text
    from vaetui.ui.screens.explore.latent import disentanglement_text

    run = RunStore(include_demo=True).open("demo")
    samples, dis = run.newest_eval("samples"), run.newest_eval("disentanglement")
    assert samples["protocol"]["run"] == "demo" and samples["protocol"]["checkpoint"] == "ckpt-best.pt"
    assert "FD-attr" in quality_text(samples, "demo") and "MIG" in disentanglement_text(dis, "demo")
