"""A study and its runs agree: after a worker dies at any point, on --resume, and with a storage that fails."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from vaetui.runs.store import Run, RunStore
from vaetui.studies.spec import StudySpec, load_space, load_study, read_spec, without_password, write_spec
from vaetui.studies.worker import claim, stop_workers

from helpers import train

TINY = 'preset = "tiny"\ndataset_size = 64\nbatch_size = 16\nvalid_size = 16\nlog_every = 1\nimage_every = 1000\n'
DEAD = f"{socket.gethostname()}:999999999"  # a worker that is not running here


def vaetui(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaetui", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)


def one_line(out, says: str) -> str:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and says in lines[0], out.stderr
    return lines[0]


def a_study(tmp_path: Path, trials: int = 1) -> tuple[Path, Path, StudySpec]:
    runs, space = tmp_path / "runs", tmp_path / "space.toml"
    space.write_text(TINY + "epochs = 1\n[sweep]\nbeta = [0.5, 2.0]\n")
    spec = StudySpec("s", load_space(str(space)), "valid-loss", "random", "none", trials)
    write_spec(runs, spec)
    return runs, space, spec


def test_a_trial_whose_run_finished_but_whose_worker_died_untold_is_reported_from_its_run(tmp_path):
    """--resume reported it as FAIL "no finite valid-loss": the resumed run had nothing left to train."""
    runs, space, spec = a_study(tmp_path)
    study = load_study(runs, spec)
    trial, run, _ = claim(study, spec, runs, {"threads": 1}, resume=False)
    trial.set_user_attr("worker", DEAD)
    _, events = train(RunStore(runs, include_demo=False), run.name, resume=True)  # trained; Optuna never told
    logged = [e.valid_loss for e in events if e.kind == "epoch"][-1]
    out = vaetui("sweep", space, "--study", "s", "--resume", "--runs-dir", runs, "--threads", 1)
    assert out.returncode == 0, out.stderr
    (t,) = load_study(runs, spec).get_trials()
    assert t.state.name == "COMPLETE" and t.value == pytest.approx(logged)


def test_a_running_trial_whose_run_was_never_made_is_trained_on_resume(tmp_path):
    runs, space, spec = a_study(tmp_path)
    study = load_study(runs, spec)
    trial, run, _ = claim(study, spec, runs, {"threads": 1}, resume=False)
    trial.set_user_attr("worker", DEAD)
    RunStore(runs, include_demo=False).delete(run.name)  # as if the worker died between ask and create
    out = vaetui("sweep", space, "--study", "s", "--resume", "--runs-dir", runs, "--threads", 1)
    assert out.returncode == 0, out.stderr
    (t,) = load_study(runs, spec).get_trials()
    assert t.state.name == "COMPLETE" and Run(runs / run.name).has_checkpoint()


def test_stopping_a_study_signals_only_its_workers(tmp_path):
    """A PID in the journal may belong to another program by now: it is never signalled."""
    runs, _, spec = a_study(tmp_path)
    study = load_study(runs, spec)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        trial = study.ask()
        trial.set_user_attr("worker", f"{socket.gethostname()}:{stranger.pid}")
        assert stop_workers(study) == (0, 0)
        time.sleep(0.2)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("url, says", [
    ("postgresql://u:secret@127.0.0.1:9/db", "cannot open the study in postgresql://u@127.0.0.1:9/db"),
    ("nosuchdb://x", "cannot open the study in nosuchdb://x"),
    ("sqlite:////no/such/folder/x.db", "cannot open the study in sqlite:////no/such/folder/x.db"),
])
def test_a_bad_or_unreachable_storage_is_one_line_and_leaves_nothing(tmp_path, url, says):
    runs, space, _ = a_study(tmp_path)
    for _ in range(2):  # and the next command says the same, not a traceback
        line = one_line(vaetui("sweep", space, "--study", "bad", "--storage", url, "--runs-dir", runs), says)
        assert "secret" not in line
        assert not (runs / "bad").exists()


def test_a_password_is_never_written_to_disk(tmp_path, monkeypatch):
    spec = StudySpec("p", load_space("latent"), storage="postgresql://u:secret@db.example:5432/studies")
    assert spec.to_json()["storage"] == "postgresql://u@db.example:5432/studies"
    assert without_password("mysql://root:p%40ss@[::1]:3306/x") == "mysql://root@[::1]:3306/x"
    assert without_password("sqlite:///a/b.db") == "sqlite:///a/b.db"
    write_spec(tmp_path, spec)
    assert "secret" not in (tmp_path / "p" / "study.json").read_text()


def test_sweep_show_checks_the_name_and_writes_nothing(tmp_path):
    runs = tmp_path / "runs"
    one_line(vaetui("sweep", "show", "../etc", "--runs-dir", runs), "invalid study name")
    db = tmp_path / "studies.db"
    spec = StudySpec("ghost", load_space("latent"), storage=f"sqlite:///{db}")
    write_spec(runs, spec)
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}")
    before = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")]
    one_line(vaetui("sweep", "show", "ghost", "--runs-dir", runs), "study 'ghost' is not in")
    assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")] == before == ["other"]
    assert json.loads((runs / "ghost" / "study.json").read_text())["name"] == "ghost"
    assert read_spec(runs, "ghost").storage == f"sqlite:///{db}"
