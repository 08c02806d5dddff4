"""Studies on Optuna: trials are runs, workers share a journal, a killed study resumes, a bad trial is pruned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from vaetui.runs.store import RunStore
from vaetui.studies.spec import read_spec, storage

TINY = 'preset = "tiny"\ndataset_size = 64\nbatch_size = 16\nvalid_size = 16\nlog_every = 1\nimage_every = 1000\n'


def vaetui(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaetui", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)


def space(tmp_path: Path, body: str, settings: str = TINY + "epochs = 2\n") -> Path:
    path = tmp_path / "space.toml"
    path.write_text(settings + "[sweep]\n" + body)
    return path


def trials(runs: Path, name: str):
    spec = read_spec(runs, name)
    return optuna.load_study(study_name=name, storage=storage(runs, spec)).get_trials()


def started_events(runs: Path, run: str) -> list[dict]:
    lines = (runs / run / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "started"]


def test_a_four_trial_study_with_two_workers_completes(tmp_path):
    runs = tmp_path / "runs"
    alerts = tmp_path / "alerts.jsonl"
    out = vaetui("sweep", space(tmp_path, "latent = [2, 3, 4, 6]\n"), "--study", "lat", "--workers", 2, "--pruner", "none",
                 "--runs-dir", runs, "--notify-cmd", f"cat >> {alerts}")
    assert out.returncode == 0, out.stderr
    said = [json.loads(line) for line in alerts.read_text().splitlines()]  # the workers alerted for their trials
    assert sorted(a["run"] for a in said if a["kind"] == "finished") == [f"lat-t{k:03d}" for k in range(4)]
    assert {a["kind"] for a in said} <= {"finished", "collapse"}  # tiny trials collapse, and say so
    done = trials(runs, "lat")
    assert [t.state.name for t in done] == ["COMPLETE"] * 4
    assert sorted(t.params["latent"] for t in done) == [2, 3, 4, 6]  # the grid, each once
    store = RunStore(runs, include_demo=False)
    for t in done:  # each an ordinary run, with the trial's setting and a finished history
        run = store.open(f"lat-t{t.number:03d}")
        assert run.config().model.latent == t.params["latent"]
        assert run.history(steps="none").status == "finished"
    workers = {line.split("]")[0] for line in out.stdout.splitlines() if line.startswith("[w")}
    assert workers == {"[w1", "[w2"}  # both worked
    assert "best: trial" in out.stdout
    shown = json.loads(vaetui("sweep", "show", "lat", "--json", "--runs-dir", runs).stdout)
    assert len(shown["rows"]) == 4 and shown["best"]["value"] == min(t.value for t in done)
    assert all(r["kl"] is not None and r["recon"] is not None for r in shown["rows"])  # from the runs' histories
    png = tmp_path / "rd.png"
    assert vaetui("sweep", "show", "lat", "--out", png, "--runs-dir", runs).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_killed_study_resumes_without_repeating_finished_trials(tmp_path):
    runs = tmp_path / "runs"
    toml = space(tmp_path, "beta = [0.5, 1.0, 2.0]\n", TINY + "epochs = 6\ncheckpoint_every = 2\n")
    proc = subprocess.Popen([sys.executable, "-m", "vaetui", "sweep", str(toml), "--study", "b", "--pruner", "none",
                             "--workers", "1", "--runs-dir", str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = runs / "b-t001"
    deadline = time.monotonic() + 300
    while not (second / "ckpt-latest.pt").exists() and time.monotonic() < deadline:  # trial 1 is under way
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: t.state.name for t in trials(runs, "b")}
    assert before == {0: "COMPLETE", 1: "RUNNING", 2: "WAITING"}  # the grid's last still enqueued
    first_events = started_events(runs, "b-t000")

    out = vaetui("sweep", toml, "--study", "b", "--resume", "--runs-dir", runs)
    assert out.returncode == 0, out.stderr
    after = trials(runs, "b")
    assert [t.state.name for t in after] == ["COMPLETE"] * 3 and len(after) == 3  # no trial repeated or added
    assert started_events(runs, "b-t000") == first_events  # the finished trial was not touched
    resumed = started_events(runs, "b-t001")
    assert len(resumed) == 2 and resumed[1]["resumed"] and resumed[1]["step"] > 0  # from its checkpoint
    assert "trial 1 (b-t001): resumed" in out.stdout


def test_a_clearly_worse_trial_is_pruned(tmp_path):
    runs = tmp_path / "runs"
    # two trials that learn, then one whose learning rate cannot move it: behind the median from epoch 1
    toml = space(tmp_path, "lr = [0.003, 0.002, 1e-7]\n", TINY + "epochs = 4\n")
    out = vaetui("sweep", toml, "--study", "p", "--sampler", "grid", "--pruner", "median", "--runs-dir", runs)
    assert out.returncode == 0, out.stderr
    states = {t.params["lr"]: t for t in trials(runs, "p")}
    assert states[0.003].state.name == states[0.002].state.name == "COMPLETE"
    bad = states[1e-7]
    assert bad.state.name == "PRUNED" and "pruned after epoch" in bad.user_attrs["reason"]
    history = RunStore(runs, include_demo=False).open("p-t002").history(steps="none")
    assert history.epochs_done < 4 and history.reason == "stopped"  # stopped early, with a checkpoint
    assert (runs / "p-t002" / "ckpt-latest.pt").exists()


def test_two_processes_share_one_journal_without_losing_a_trial(tmp_path):
    runs = tmp_path / "runs"
    toml = space(tmp_path, "latent = [2, 3, 4, 5, 6]\n")
    cmd = [sys.executable, "-m", "vaetui", "sweep", str(toml), "--study", "shared", "--threads", "1", "--pruner", "none",
           "--runs-dir", str(runs)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    done = trials(runs, "shared")
    assert sorted(t.params["latent"] for t in done) == [2, 3, 4, 5, 6]  # each once: none lost, none twice
    assert all(t.state.name == "COMPLETE" for t in done)
    assert all("trial" in o[0] for o in outs)  # both processes trained some


def test_a_study_in_sqlite_storage(tmp_path):
    runs, db = tmp_path / "runs", tmp_path / "studies.db"
    out = vaetui("sweep", space(tmp_path, "beta = [0.5, 2.0]\n"), "--study", "sq", "--storage", f"sqlite:///{db}",
                 "--runs-dir", runs)
    assert out.returncode == 0, out.stderr
    assert db.exists() and not (runs / "sq" / "journal.log").exists()
    loaded = optuna.load_study(study_name="sq", storage=f"sqlite:///{db}")
    assert [t.state.name for t in loaded.get_trials()] == ["COMPLETE", "COMPLETE"]
    assert "sq-t001" in vaetui("sweep", "show", "sq", "--runs-dir", runs).stdout


@pytest.mark.parametrize("body, settings, says", [
    ("colour = [1, 2]\n", TINY, "unknown parameter 'colour'"),
    ("beta = []\n", TINY, "beta: an empty list"),
    ("beta = {low = 3, high = 1}\n", TINY, "low (3.0) must be below high (1.0)"),
    ("beta = [-1, 1]\n", TINY, "beta:"),
    ("lr = {low = 0, high = 0.1, log = true}\n", TINY, "lr:"),
    ("device = ['cpu']\n", TINY, "unknown parameter 'device'"),
    ("", TINY + "[other]\nx = 1\n", "no [sweep] section"),
    ("beta = [1, 2]\n", TINY + "colour = 3\n", "colour"),
])
def test_bad_spaces_are_one_line_errors(tmp_path, body, settings, says):
    out = vaetui("sweep", space(tmp_path, body, settings), "--runs-dir", tmp_path / "runs")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], out.stderr


@pytest.mark.parametrize("args, says", [
    (["nosuchstudy"], "no study named 'nosuchstudy'"),
    (["missing.toml"], "missing.toml: no such file"),
    (["show"], "name the study"),
    (["show", "nope"], "no study 'nope'"),
    (["latent", "--sampler", "grid", "--trials", "0"], "--trials"),
    (["latent", "--workers", "0"], "--workers"),
    (["latent", "--resume", "--study", "fresh"], "no study 'fresh'"),
])
def test_bad_sweep_commands_are_one_line_errors(tmp_path, args, says):
    out = vaetui("sweep", *args, "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], out.stderr


def test_a_range_in_a_grid_and_a_changed_study_are_refused(tmp_path):
    runs = tmp_path / "runs"
    ranged = space(tmp_path, "lr = {low = 1e-4, high = 1e-2, log = true}\n")
    out = vaetui("sweep", ranged, "--sampler", "grid", "--runs-dir", runs)
    assert out.returncode != 0 and "--sampler grid needs lists" in out.stderr
    toml = space(tmp_path, "beta = [0.5]\n", TINY + "epochs = 1\n")
    assert vaetui("sweep", toml, "--study", "c", "--runs-dir", runs).returncode == 0
    out = vaetui("sweep", toml, "--study", "c", "--epochs", "3", "--runs-dir", runs)
    assert out.returncode != 0 and "exists with other settings" in out.stderr
    assert os.path.exists(runs / "c" / "study.json")


def test_a_trial_under_torchrun(tmp_path):
    runs = tmp_path / "runs"
    out = vaetui("sweep", space(tmp_path, "beta = [0.5]\n"), "--study", "ddp", "--torchrun", 2, "--threads", 1,
                 "--runs-dir", runs)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "under torchrun ×2" in out.stdout
    (t,) = trials(runs, "ddp")
    assert t.state.name == "COMPLETE" and t.intermediate_values  # reported from the ranks' log, epoch by epoch
    started = started_events(runs, "ddp-t000")
    assert started[-1]["world_size"] == 2


def test_a_psnr_study_reports_each_trial_s_psnr_from_its_best_checkpoint(tmp_path):
    """The psnr metric is measured after training, on the trial's best checkpoint: its value is that run's PSNR."""
    runs = tmp_path / "runs"
    out = vaetui("sweep", space(tmp_path, "latent = [2]\n", TINY + "epochs = 1\n"), "--study", "ps", "--metric", "psnr",
                 "--pruner", "none", "--runs-dir", runs)
    assert out.returncode == 0, out.stderr
    (trial,) = trials(runs, "ps")
    assert trial.state.name == "COMPLETE"
    from vaetui.data import open_split
    from vaetui.metrics.likelihood import psnr
    from vaetui.runs.checkpoint import load_model

    model, config, path, _ = load_model(RunStore(runs, include_demo=False).open("ps-t000"), "best")
    split = open_split(config.data, "valid")
    images = split.images(list(range(config.train.valid_size)))
    from vaetui.models.latent import reconstruct

    recon, _ = reconstruct(model, images, config.model.likelihood)
    assert path.name == "ckpt-best.pt" and 5 < trial.value < 60
    assert abs(trial.value - psnr(images, recon)) < 0.5  # the same images, the same network, the same measure
