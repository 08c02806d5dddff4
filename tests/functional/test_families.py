"""Every VAE family trains, resumes bit-exactly, loads with weights_only, logs its own terms, and works with the
headless twins and eval: the same run store and screens as the seed's β-VAE."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from vaetui.config.settings import MODELS
from vaetui.runs.events import StepEvent
from vaetui.runs.store import RunStore

from helpers import tiny_config, train

OWN_TERMS = {"vae": set(), "iwae": {"iwae"}, "beta-tcvae": {"mi", "tc", "dwkl"}, "factorvae": {"tc"}, "vamp": set(),
             "hvae": {"kl_top", "kl_low"}, "vqvae": {"commit", "perplexity", "usage"}}


@pytest.mark.parametrize("family", MODELS)
def test_a_family_trains_resumes_exactly_and_logs_its_terms(tmp_path, family):
    store = RunStore(tmp_path, include_demo=False)
    # log_every 2 with checkpoint_every 3: a checkpoint falls between two step events and carries the window's sums
    # (vqvae: its prior trains from step 7 of the planned 24, so the straight run and the resumed one cross into it)
    cfg = dict(model=family, max_steps=12, epochs=3, iw_samples=3, lr=3e-3, log_every=2, pseudo_inputs=4,
               prior_fraction=0.7)
    straight, events = train(store, "straight", tiny_config(**cfg))
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert sum(e.loss for e in steps[-3:]) < sum(e.loss for e in steps[:3])  # it learns
    assert set(steps[-1].terms or {}) == OWN_TERMS[family]
    logged = [json.loads(line) for line in straight.metrics_path.read_text().splitlines()]
    assert all(set(e.get("terms") or {}) == OWN_TERMS[family] for e in logged if e["type"] == "step")
    half, _ = train(store, "half", tiny_config(**{**cfg, "max_steps": 5}))
    half, events = train(store, "half", tiny_config(**cfg), resume=True)
    assert events[0].resumed and events[0].step == 5
    a = straight.load_checkpoint("latest", fallback=False)[0]  # weights_only, CRC-checked
    b = half.load_checkpoint("latest", fallback=False)[0]
    assert json.loads(a["config"])["model"]["family"] == family
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_the_twins_and_eval_work_on_every_family(tmp_path):
    runs = tmp_path / "runs"
    vaetui = [sys.executable, "-m", "vaetui"]
    for family in MODELS:
        out = subprocess.run([*vaetui, "train", "--preset", "tiny", "--model", family, "--max-steps", "8",
                              "--iw-samples", "2", "--runs-dir", runs, "--name", family, "--threads", "1",
                              "--log-format", "json"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        for args in (["sample", family, "--n", "4", "--out", tmp_path / f"{family}.png"],
                     ["interpolate", family, "--steps", "3", "--out", tmp_path / f"{family}-i.png"],
                     ["eval", family, "--n", "16", "--k", "2", "--disentangle-n", "0", "--json"]):
            done = subprocess.run([*vaetui, *map(str, args), "--runs-dir", runs], capture_output=True, text=True)
            assert done.returncode == 0, (family, args[0], done.stderr)
        assert (tmp_path / f"{family}.png").stat().st_size > 0
        assert json.loads(done.stdout)["per_image"]["iwae_nll"] > 0
    listed = subprocess.run([*vaetui, "runs", "--json", "--runs-dir", runs], capture_output=True, text=True)
    models = {r["name"]: r["model"] for r in json.loads(listed.stdout)}
    assert all(models[f] == f for f in MODELS), models  # the runs list's model column


def test_a_vqvae_trains_its_network_then_its_prior_and_says_what_it_does_not_define(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    cfg = tiny_config(model="vqvae", max_steps=12, epochs=3, lr=3e-3, prior_fraction=0.5, checkpoint_every=6,
                      codebook_size=16)
    run, first = train(store, "vq", cfg)  # 24 planned steps: the network for 12, the prior after (none here)
    net = {k: v for k, v in run.load_checkpoint("latest", fallback=False)[0]["model"].items()}
    run, events = train(store, "vq", tiny_config(**{**cfg.to_dict()["train"], "model": "vqvae", "max_steps": 20,
                                                   "codebook_size": 16, "prior_fraction": 0.5}), resume=True)
    after = run.load_checkpoint("latest", fallback=False)[0]["model"]
    frozen = [k for k in net if not k.startswith("prior.")]
    assert all(torch.equal(net[k], after[k]) for k in frozen)  # the network (and its codebook) is frozen...
    assert any(not torch.equal(net[k], after[k]) for k in net if k.startswith("prior."))  # ...its prior learns
    uniform = 4 * 4 * math.log(16)  # the paper's KL: log K a position of the 4x4 map, until the prior trains
    assert all(e.kl == pytest.approx(uniform) for e in first if isinstance(e, StepEvent))
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert steps[0].step > 12 and steps[-1].kl < uniform  # the learned prior's NLL of the codes: below the uniform
    vaetui = [sys.executable, "-m", "vaetui"]
    for args, said in ((["latent", "vq", "--out", tmp_path / "l.png"], "not defined for a discrete code"),
                       (["sample", "vq", "--sampler", "gmm", "--out", tmp_path / "g.png"], "discrete")):
        out = subprocess.run([*vaetui, *map(str, args), "--runs-dir", tmp_path], capture_output=True, text=True)
        assert out.returncode == 2 and said in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    out = subprocess.run([*vaetui, "eval", "vq", "--n", "16", "--k", "4", "--runs-dir", tmp_path, "--json"],
                         capture_output=True, text=True)
    result = json.loads(out.stdout)
    pi = result["per_image"]
    assert result["latent_kind"] == "codes" and pi["iwae_nll"] == pytest.approx(pi["neg_elbo"])  # a point posterior
    assert pi["kl"] < uniform and "disentanglement" not in result


def test_a_study_compares_families(tmp_path):
    space = tmp_path / "families.toml"
    space.write_text('preset = "tiny"\ndataset_size = 64\nbatch_size = 16\nvalid_size = 16\nepochs = 1\n'
                     'image_every = 1000\n[sweep]\nmodel = ["vae", "beta-tcvae"]\n')
    runs = tmp_path / "runs"
    out = subprocess.run([sys.executable, "-m", "vaetui", "sweep", space, "--study", "fam", "--runs-dir", runs,
                          "--pruner", "none"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    store = RunStore(runs, include_demo=False)
    assert sorted(store.open(f"fam-t00{i}").config().model.family for i in range(2)) == ["beta-tcvae", "vae"]


def test_a_study_at_equal_time_evaluates_each_trial_and_shows_the_numbers(tmp_path, monkeypatch, capsys):
    import vaetui.metrics.features as attrnet
    import vaetui.studies.spec as spec
    from vaetui.cli import main

    monkeypatch.setenv("VAETUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(attrnet, "PROTOCOL", {**attrnet.PROTOCOL, "images": 64, "epochs": 1, "batch": 32})
    monkeypatch.setattr(spec, "TRIAL_EVAL", {**spec.TRIAL_EVAL, "count": 32, "k": 2, "disentangle_n": 64,
                                              "samples_n": 32})
    space = tmp_path / "space.toml"
    space.write_text('preset = "tiny"\ndataset_size = 64\nbatch_size = 16\nvalid_size = 16\nepochs = 1000\n'
                     'time_budget = 2\nimage_every = 1000\n[sweep]\nmodel = ["vae", "vqvae"]\n')
    runs = str(tmp_path / "runs")
    assert main(["sweep", str(space), "--study", "eq", "--runs-dir", runs, "--evaluate", "--threads", "1"]) == 0
    store = RunStore(tmp_path / "runs", include_demo=False)
    for i in range(2):
        run = store.open(f"eq-t00{i}")
        finished = [json.loads(line) for line in run.metrics_path.read_text().splitlines()][-1]
        assert finished["type"] == "finished" and finished["reason"] == "time budget"
        assert run.info().step < 1000 * 4  # the budget, not the epochs, ended it
    capsys.readouterr()
    assert main(["sweep", "show", "eq", "--runs-dir", runs, "--json"]) == 0
    rows = {r["params"]["model"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["vae"]["state"] == rows["vqvae"]["state"] == "complete"
    assert {"neg_elbo", "psnr", "fd_attr", "mig", "gmm_fd_attr"} <= set(rows["vae"]["eval"])
    assert "mig" not in rows["vqvae"]["eval"] and "gmm_fd_attr" not in rows["vqvae"]["eval"]  # a discrete code
    assert rows["vae"]["eval"]["neg_elbo"] == pytest.approx(
        store.open(rows["vae"]["run"]).newest_eval("samples")["per_image"]["neg_elbo"])
    assert main(["sweep", "show", "eq", "--runs-dir", runs]) == 0
    shown = capsys.readouterr().out
    assert "evaluation on 32 test images" in shown and "FD GMM" in shown


def test_the_gmm_fit_is_kept_with_its_protocol_and_deleted_with_the_run(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    train(store, "g", tiny_config(max_steps=8))  # one epoch: a best checkpoint
    vaetui = [sys.executable, "-m", "vaetui"]
    out = subprocess.run([*vaetui, "sample", "g", "--sampler", "gmm", "--runs-dir", tmp_path, "--out",
                          tmp_path / "g.png"], capture_output=True, text=True)
    assert out.returncode == 0 and "ex-post GMM" in out.stdout, out.stderr
    (kept,) = (tmp_path / "g" / "samplers").glob("*.json")
    record = json.loads(kept.read_text())
    assert record["protocol"]["checkpoint"] == "ckpt-best.pt" and record["protocol"]["images"] == 128
    assert len(record["mixture"]["weights"]) == 10
    kept.write_text('{"mixture": {"weights": [2.0]}}')  # a damaged fit is fitted again, not a traceback
    again = subprocess.run([*vaetui, "sample", "g", "--sampler", "gmm", "--runs-dir", tmp_path, "--out",
                            tmp_path / "g2.png"], capture_output=True, text=True)
    assert again.returncode == 0 and (tmp_path / "g.png").read_bytes() == (tmp_path / "g2.png").read_bytes()
    assert store.delete("g") == [] and not (tmp_path / "g").exists()


def test_eval_measures_gmm_samples_as_an_eval_of_their_own(tmp_path, monkeypatch, capsys):
    import vaetui.metrics.features as attrnet
    from vaetui.cli import main

    monkeypatch.setenv("VAETUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(attrnet, "PROTOCOL", {**attrnet.PROTOCOL, "images": 64, "epochs": 1, "batch": 32})
    store = RunStore(tmp_path, include_demo=False)
    train(store, "e", tiny_config(max_steps=8))
    common = ["eval", "e", "--runs-dir", str(tmp_path), "--n", "16", "--k", "2", "--disentangle-n", "0", "--samples",
              "--samples-n", "32", "--json"]
    assert main([*common]) == 0
    prior = json.loads(capsys.readouterr().out)
    assert main([*common, "--sampler", "gmm"]) == 0
    gmm = json.loads(capsys.readouterr().out)
    assert prior["samples"]["protocol"]["sampler"] == "prior" and gmm["samples"]["protocol"]["sampler"] == "gmm"
    assert gmm["protocol"]["sampler"] == "gmm" and "sampler" not in prior["protocol"]
    assert prior["samples"]["attr"]["fd"] != gmm["samples"]["attr"]["fd"]  # other samples, another distance
    names = sorted(p.name for p in (tmp_path / "e" / "eval").glob("*.json"))
    assert names == ["best-test-n16-k2-s0-gmm.json", "best-test-n16-k2-s0.json"]  # neither replaces the other
    assert main(["eval", "e", "--runs-dir", str(tmp_path), "--sampler", "gmm"]) == 2  # gmm measures --samples
    from vaetui.metrics.fidelity import samples_summary

    assert "32 GMM samples vs" in samples_summary(gmm["samples"], detail=True)
    assert "32 prior samples vs" in samples_summary(prior["samples"], detail=True)
