"""Studies on a real PostgreSQL server, started by the test on localhost (as several hosts would share one).

`.ci/run` installs PostgreSQL from the system packages when it is missing, as it does tmux; the driver is the
`[postgres]` extra (psycopg 3, the driver SQLAlchemy 2.1 uses for postgresql://), which the test extra includes.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

PASSWORD = "s3cret-pw"
TINY = 'preset = "tiny"\ndataset_size = 64\nbatch_size = 16\nvalid_size = 16\nlog_every = 1\nimage_every = 1000\n'


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    assert found, f"the PostgreSQL tests need {name}: apt-get install postgresql (.ci/run does)"
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway server on 127.0.0.1 with a role that logs in by password and a database for studies."""
    import psycopg  # noqa: F401 - a test dependency: missing, the set-up fails (never a skip)

    as_user = []
    folder = Path(tempfile.mkdtemp(prefix="vaetui-pg-"))
    if os.geteuid() == 0:  # initdb refuses root: the server runs as the postgres user (or nobody)
        user = "postgres" if _has_user("postgres") else "nobody"
        shutil.chown(folder, user)
        as_user = ["runuser", "-u", user, "--"]
    data, port = folder / "data", _free_port()
    try:
        subprocess.run([*as_user, _bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256"], check=True, capture_output=True)
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "server.log"), "-o",
                        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True,
                       capture_output=True)
        for sql in (f"CREATE ROLE vaetui LOGIN PASSWORD '{PASSWORD}'", "CREATE DATABASE studies OWNER vaetui"):
            subprocess.run([*as_user, _bin("psql"), "-h", str(folder), "-p", str(port), "-U", "postgres", "-d",
                            "postgres", "-c", sql], check=True, capture_output=True)
        yield f"postgresql://vaetui:{PASSWORD}@127.0.0.1:{port}/studies"
    finally:
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def vaetui(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaetui", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})}, **kw)


def started(runs: Path, run: str) -> list[dict]:
    lines = (runs / run / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "started"]


def test_two_workers_share_a_study_on_postgresql_and_no_password_reaches_the_disk(tmp_path, postgres):
    runs, space = tmp_path / "runs", tmp_path / "space.toml"
    space.write_text(TINY + "epochs = 1\n[sweep]\nbeta = [0.25, 0.5, 1.0, 2.0]\n")
    out = vaetui("sweep", space, "--study", "pg", "--storage", postgres, "--workers", 2, "--threads", 1,
                 "--runs-dir", runs)
    assert out.returncode == 0, out.stderr
    study = optuna.load_study(study_name="pg", storage=postgres)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    names = [t.user_attrs["run"] for t in trials]
    assert len(set(names)) == 4 and all(len(started(runs, n)) == 1 for n in names)  # none lost, none twice
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers trained
    assert sorted(t.params["beta"] for t in trials) == [0.25, 0.5, 1.0, 2.0]
    for path in runs.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".lock", ""):
            assert PASSWORD not in path.read_text(errors="replace"), path
    spec = json.loads((runs / "pg" / "study.json").read_text())
    assert spec["storage"] == postgres.replace(f":{PASSWORD}@", "@")
    shown = vaetui("sweep", "show", "pg", "--runs-dir", runs, env={"PGPASSWORD": PASSWORD})
    assert shown.returncode == 0 and "pg-t003" in shown.stdout, shown.stderr


def test_a_worker_killed_mid_trial_is_resumed_on_postgresql(tmp_path, postgres):
    runs, space = tmp_path / "runs", tmp_path / "space.toml"
    space.write_text(TINY + "epochs = 3\ncheckpoint_every = 2\n[sweep]\nlatent = [2, 3]\n")
    worker = subprocess.Popen([sys.executable, "-m", "vaetui", "sweep", str(space), "--study", "k", "--storage",
                               postgres, "--threads", "1", "--runs-dir", str(runs)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = runs / "k-t000" / "ckpt-latest.pt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # waits on the state that matters: trial 0 has a checkpoint
    assert ckpt.exists(), "trial 0 never checkpointed"
    worker.send_signal(signal.SIGKILL)  # no goodbye to Optuna: the trial stays RUNNING
    worker.wait()
    study = optuna.load_study(study_name="k", storage=postgres)
    assert [t.state.name for t in study.get_trials()] == ["RUNNING", "WAITING"]  # the grid's second, not begun
    out = vaetui("sweep", space, "--study", "k", "--resume", "--threads", 1, "--runs-dir", runs,
                 env={"PGPASSWORD": PASSWORD})  # the driver's own way to the password: none on the command line
    assert out.returncode == 0, out.stderr
    trials = optuna.load_study(study_name="k", storage=postgres).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    first = started(runs, "k-t000")
    assert len(first) == 2 and first[1]["resumed"] and first[1]["step"] > 0  # from its checkpoint, same run
    assert len(started(runs, "k-t001")) == 1
