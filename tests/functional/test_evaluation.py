"""Metric values in known relations, on the demo model and on an untrained one; eval and plot files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from vaetui.runs.checkpoint import load_model
from vaetui.data import open_split
from vaetui.metrics.likelihood import evaluate, linear_probe_r2, ssim
from vaetui.models.vae import ConvVAE
from vaetui.runs.store import RunStore

from helpers import tiny_config, train


def demo():
    run = RunStore(include_demo=True).open("demo")
    model, config, _, _ = load_model(run)
    return model, config


def test_iwae_bound_is_tighter_and_trained_beats_untrained():
    model, config = demo()
    split = open_split(config.data, "test")
    trained = evaluate(model, config, split, count=64, k=32, seed=1)
    assert trained["per_image"]["iwae_nll"] <= trained["per_image"]["neg_elbo"]
    torch.manual_seed(0)
    fresh = ConvVAE.from_config(config).eval()
    untrained = evaluate(fresh, config, split, count=64, k=4, seed=1)
    assert untrained["active_units"] == 0 < trained["active_units"] <= config.model.latent
    assert trained["psnr"] > untrained["psnr"] + 6 and trained["ssim"] > untrained["ssim"]
    assert abs(sum(trained["kl_per_dim"]) - trained["per_image"]["kl"]) < 1e-3 * max(1.0, trained["per_image"]["kl"])
    # The code holds the head position and lighting almost linearly (they move every pixel).
    probes = evaluate(model, config, split, count=512, k=1, seed=1)["probe_r2"]
    assert probes["head_x"] > 0.8 and probes["lighting"] > 0.8
    assert np.mean(list(probes.values())) > np.mean(list(evaluate(fresh, config, split, 512, 1, 1)["probe_r2"].values()))
    again = evaluate(model, config, split, count=64, k=32, seed=1)
    assert again["per_image"] == trained["per_image"]  # fixed protocol, same numbers


def test_trained_code_is_more_disentangled_and_informative_than_untrained():
    from vaetui.metrics.disentangle import disentanglement

    model, config = demo()
    split = open_split(config.data, "test")
    trained = disentanglement(model, split, 2000)
    torch.manual_seed(0)
    fresh = disentanglement(ConvVAE.from_config(config).eval(), split, 2000)
    assert trained["kind"] == "factors" and trained["count"] == 2000
    assert trained["dci_informativeness"] > fresh["dci_informativeness"] + 0.1
    assert trained["mig"] > fresh["mig"] and trained["sap"] > fresh["sap"]


def test_ssim_and_probe_basics():
    x = torch.rand(2, 3, 32, 32)
    assert abs(ssim(x, x) - 1.0) < 1e-5 and ssim(x, torch.rand(2, 3, 32, 32)) < 0.5
    f = np.random.default_rng(0).normal(size=(200, 3))
    assert linear_probe_r2(f, f @ np.array([1.0, -2.0, 0.5])) > 0.999
    assert linear_probe_r2(f, np.random.default_rng(1).normal(size=200)) < 0.2


def test_eval_cli_stores_results_with_protocol_and_plot_writes_png(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    train(store, "a", tiny_config(epochs=2))
    train(store, "b", tiny_config(epochs=2, latent=3))
    out = subprocess.run([sys.executable, "-m", "vaetui", "eval", "a", "--runs-dir", str(tmp_path), "--n", "32",
                          "--k", "4", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["protocol"] == {"run": "a", "checkpoint": "ckpt-best.pt", "split": "test", "count": 32, "k": 4, "seed": 0,
                                  "disentangle_n": 4096}
    dis = result["disentanglement"]
    assert dis["kind"] == "factors" and dis["count"] == 4096 and dis["bins"] == 20 and len(dis["mig_per_factor"]) == 16
    stored = json.loads((tmp_path / "a" / "eval" / "best-test-n32-k4-s0.json").read_text())
    assert stored.pop("written") > 0 and stored == result
    out = subprocess.run([sys.executable, "-m", "vaetui", "plot", "a", "b", "--runs-dir", str(tmp_path), "--steps",
                          "--out", str(tmp_path / "curves.png")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    img = Image.open(tmp_path / "curves.png")
    assert img.size[0] > 400 and len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 10


def test_plot_rd_puts_each_run_at_its_last_validation(tmp_path):
    """`vaetui plot --rd`: each run's point is its last validation epoch's (KL, reconstruction), read from the log."""
    store = RunStore(tmp_path, include_demo=False)
    train(store, "low", tiny_config(epochs=2, beta=0.1))
    train(store, "high", tiny_config(epochs=2, beta=8.0))
    out = subprocess.run([sys.executable, "-m", "vaetui", "plot", "--rd", "low", "high", "--runs-dir", str(tmp_path),
                          "--out", str(tmp_path / "rd.png")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in ("low", "high"):
        evals = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        last = [e for e in evals if e["type"] == "eval"][-1]
        assert f"{name}: KL {last['kl']:.2f}  reconstruction {last['recon']:.2f}" in out.stdout
    kl = {ln.split(":")[0]: float(ln.split("KL ")[1].split()[0]) for ln in out.stdout.splitlines() if "KL" in ln}
    assert kl["high"] < kl["low"]  # the β-VAE picture: a larger β buys a lower rate
    img = np.asarray(Image.open(tmp_path / "rd.png").convert("RGB"))
    blue, orange = (31, 119, 180), (255, 127, 14)  # matplotlib's first two colours: one point each
    for colour in (blue, orange):
        assert (np.abs(img.astype(int) - colour).sum(-1) < 30).sum() > 20


def test_latent_figures_on_the_demo():
    from vaetui.pictures import latent_space as figures

    model, config = demo()
    mu, logvar, names, attrs = figures.encode_split(model, config, "valid", 256)
    ranking = figures.latent_ranking(mu, logvar)
    assert [r["kl"] for r in ranking] == sorted((r["kl"] for r in ranking), reverse=True)
    assert ranking[0]["active"] and sum(r["active"] for r in ranking) > 0
    trav = figures.traversal(model, config, mu[0], ranking[0]["dim"], spread=ranking[0]["mu_std"])
    assert len(trav.frames) == 7
    first, mid, last = (np.asarray(trav.frames[k], dtype=float) for k in (0, 3, 6))
    assert np.abs(first - last).mean() > np.abs(mid - mid).mean() + 5  # moving the top dimension changes the face
    vec = figures.attribute_vector(mu, names, attrs, "Bald")
    strip = figures.attribute_strip(model, mu[0], vec)
    assert strip.image.width > strip.image.height
    # "more Bald" moves μ along the direction that separates bald faces from the others
    on = torch.from_numpy(attrs[:, names.index("Bald")])
    assert float(((mu[on] - mu[~on].mean(0)) @ vec).mean()) > 0
    sc = figures.scatter(mu[:, :3], names, attrs, "Smiling")
    assert sc.info["count"] == 256 and sc.image.width > sc.image.height


def test_plot_of_a_run_with_steps_but_no_epoch_draws_its_steps(tmp_path):
    """`vaetui plot RUN` said "no metrics yet" for a run whose steps had losses (no epoch ended yet)."""
    from vaetui.cli import main

    store = RunStore(tmp_path, include_demo=False)
    train(store, "early", tiny_config(max_steps=5))
    store.create(tiny_config(), "empty")
    out = tmp_path / "curves.png"
    assert main(["plot", "early", "--runs-dir", str(tmp_path), "--out", str(out)]) == 0
    assert len(np.unique(np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3), axis=0)) > 10
    assert main(["plot", "empty", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "e.png")]) == 2


def test_eval_of_another_run_s_checkpoint_is_refused_and_a_loose_one_is_not_stored(tmp_path):
    """`eval a --checkpoint runs/b/ckpt-best.pt` stored b's numbers as a's best."""
    import shutil

    from vaetui.cli import main

    store = RunStore(tmp_path / "runs", include_demo=False)
    a, _ = train(store, "a", tiny_config(max_steps=8))
    b, _ = train(store, "b", tiny_config(max_steps=8, seed=3))
    common = ["--runs-dir", str(tmp_path / "runs"), "--n", "8", "--k", "1", "--disentangle-n", "64"]
    assert main(["eval", "a", "--checkpoint", str(b.checkpoint_path("best")), *common]) == 2
    loose = tmp_path / "elsewhere.pt"
    shutil.copy(b.checkpoint_path("best"), loose)
    assert main(["eval", "a", "--checkpoint", str(loose), *common]) == 0
    assert not (a.path / "eval").exists() or not list((a.path / "eval").glob("*.json"))
    assert main(["eval", "a", "--checkpoint", "best", *common]) == 0
    assert [p.name for p in (a.path / "eval").glob("*.json")] == ["best-test-n8-k1-s0.json"]
