"""A run's trainer lock, across processes and hosts: one trainer at a time, a dead holder's lock taken over, a
holder on another host judged by its heartbeat, a damaged lock file read as a dead holder."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaetui.errors import RunError
from vaetui.runs.store import RunStore

from helpers import tiny_config

VAETUI = [sys.executable, "-m", "vaetui"]


def _race_for_lock(run_dir: str, barrier, results, hold: float) -> None:
    from vaetui.runs.store import Run

    run = Run(Path(run_dir))
    barrier.wait()
    try:
        run.acquire_lock()
    except RunError:
        results.put(False)
        return
    results.put(True)
    time.sleep(hold)
    run.release_lock()


def test_racing_processes_never_both_take_the_lock(tmp_path):
    """Processes that try to lock the same run at the same instant: exactly one gets it, every time."""
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(), "race")
    ctx = multiprocessing.get_context("fork")
    for round_ in range(6):
        if round_ % 2:  # half the rounds start from a dead holder's lock file
            run.lock_path.write_text(json.dumps({"pid": 999999999, "host": socket.gethostname(), "time": 0}))
        n = 6
        barrier, results = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_race_for_lock, args=(str(run.path), barrier, results, 0.3)) for _ in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        won = [results.get(timeout=5) for _ in range(n)]
        assert sum(won) == 1, (round_, won)


def test_two_trainers_started_at_once_one_trains_the_other_says_why(tmp_path):
    """Two `vaetui train --resume` on one run at the same instant: one trains, one exits non-zero in one line."""
    store = RunStore(tmp_path, include_demo=False)
    store.create(tiny_config(epochs=3), "twice")
    cmd = [*VAETUI, "train", "--resume", "twice", "--runs-dir", str(tmp_path), "--threads", "1", "--log-format",
           "json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0 and codes[1] != 0, outs
    loser = outs[[p.returncode for p in procs].index(codes[1])]
    assert loser[1].count("\n") == 1 and "being trained by" in loser[1] and "Traceback" not in loser[1]


def test_taking_the_lock_leaves_a_live_writers_temp_file_alone(tmp_path):
    """The CI failure: the winner of the lock swept the loser's in-flight .config.json temp file away.

    Temp files are removed by age (abandoned), not because the remover holds the lock: eval and a racing
    resume write into the run folder without it.
    """
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(), "sweep")
    (run.path / "eval").mkdir()
    live = [run.path / ".config.json.0123abcd.tmp", run.path / "eval" / ".x.json.0123abcd.tmp"]
    dead = run.path / ".ckpt-latest.pt.deadbeef.tmp"
    for p in [*live, dead]:
        p.write_bytes(b"partial")
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    run.acquire_lock()
    try:
        assert all(p.exists() for p in live) and not dead.exists()
    finally:
        run.release_lock()


def test_a_resume_that_loses_the_lock_does_not_rewrite_the_settings(tmp_path):
    """`vaetui train --resume RUN --epochs 5` while another process trains RUN: refused, config.json untouched."""
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(epochs=3), "held")
    before = run.config_path.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from vaetui.runs.store import Run; "
                               "Run(sys.argv[1]).acquire_lock(); print('held', flush=True); time.sleep(60)",
                               str(run.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        out = subprocess.run([*VAETUI, "train", "--resume", "held", "--epochs", "5", "--runs-dir", str(tmp_path),
                              "--threads", "1"], capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode != 0 and "being trained by" in out.stderr, out
    assert run.config_path.read_bytes() == before


def test_a_lock_on_another_host_is_judged_by_its_heartbeat(tmp_path, monkeypatch):
    """A holder on another host: its heartbeat moving -> refused, naming host and silence; standing still for
    STALE_AFTER_S by this host's clock -> taken over. The other host's clock is never compared with ours: a
    heartbeat stamped 10 minutes in the past (a clock behind ours) still counts as alive when it moves."""
    import vaetui.disk.locks as locks

    clock = {"now": 1000.0}
    monkeypatch.setattr(locks, "_now", lambda: clock["now"])
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(), "nfs")
    for beat in (1.0, 2.0, 3.0):  # node-b's clock is far behind ours; its heartbeat moves every 20 s
        run.lock_path.write_text(json.dumps({"pid": 4242, "host": "node-b", "time": 0, "heartbeat": beat}))
        with pytest.raises(RunError, match=r"pid 4242 on node-b \(its heartbeat unchanged for 0s"):
            run.acquire_lock()
        assert run.info().status == "running"
        clock["now"] += 20
    clock["now"] += locks.STALE_AFTER_S - 30  # the last heartbeat has stood still for 110 s here: still alive
    with pytest.raises(RunError, match=r"unchanged for 1m50s"):
        run.acquire_lock()
    clock["now"] += 20
    warning = run.acquire_lock()
    assert warning and "node-b" in warning and "silent for 2m10s" in warning
    run.release_lock()
    assert not run.lock_path.exists()


@pytest.mark.parametrize("damage", ['{"pid": 7, "host": "node-b", "heartbeat": "soon"}', '{"pid": "x", "host": 3}',
                                    '[1, 2]', '{"pid": 7, "heartbeat": null, "time": "later"}', "\x00\x01"])
def test_a_damaged_lock_file_is_read_as_a_dead_holder_not_a_traceback(tmp_path, damage):
    """A damaged lock crashed `vaetui runs` for every run, and `train --resume`."""
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(), "d")
    run.lock_path.write_text(damage)
    holder = run.lock_holder()
    assert holder is not None and not holder.alive
    assert [i.name for i in store.infos()] == ["d"]
    warning = run.acquire_lock()
    assert warning and "took over" in warning
    run.release_lock()


def test_the_heartbeat_never_leaves_the_lock_file_empty(tmp_path, monkeypatch):
    """The heartbeat was rewritten as truncate-then-write: a reader between the two saw an empty lock (no
    holder) and could take it. Every write now replaces the record whole."""
    import vaetui.disk.locks as locks

    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(), "h")
    run.lock_path.write_text("x" * 2000)  # a longer, damaged file from before
    run.acquire_lock()
    lock = run._lock
    sizes = []
    real_pwrite, real_truncate = os.pwrite, os.ftruncate
    monkeypatch.setattr(locks.os, "pwrite", lambda fd, data, off: (real_pwrite(fd, data, off),
                                                                   sizes.append(os.fstat(fd).st_size))[0])
    monkeypatch.setattr(locks.os, "ftruncate", lambda fd, n: (sizes.append(("truncate", n)), real_truncate(fd, n)))
    for _ in range(3):
        lock._me["heartbeat"] = time.time()
        lock._write()
    assert all(size == locks.RECORD_BYTES for size in sizes), sizes
    assert json.loads(run.lock_path.read_text())["pid"] == os.getpid()
    run.release_lock()


def test_a_lock_file_replaced_between_open_and_flock_is_not_taken(tmp_path, monkeypatch):
    """The replaced-file guard: a taker whose open() got the old file, removed and made anew by another taker
    before its flock, must not believe it holds the lock (both would train the run)."""
    import vaetui.disk.locks as locks

    path = tmp_path / "lock"
    path.write_text("")
    winner = locks.RunLock(path)
    real_open = os.open
    calls = {"n": 0}

    def racing_open(p, flags, *mode):
        fd = real_open(p, flags, *mode)
        calls["n"] += 1
        if calls["n"] == 1 and Path(p) == path:  # between our open and our flock, another takes it anew
            path.unlink()
            monkeypatch.setattr(locks.os, "open", real_open)
            winner.acquire()
            monkeypatch.setattr(locks.os, "open", racing_open)
        return fd

    monkeypatch.setattr(locks.os, "open", racing_open)
    loser = locks.RunLock(path)
    with pytest.raises(locks.HeldElsewhere, match=f"^pid {os.getpid()} on "):  # names the winner
        loser.acquire()
    monkeypatch.setattr(locks.os, "open", real_open)
    assert winner.held and not loser.held
    winner.release()


def test_the_holder_refreshes_its_heartbeat(tmp_path, monkeypatch):
    """A holder that never refreshes its heartbeat is taken for dead by every other host after 2 minutes."""
    import vaetui.disk.locks as locks

    monkeypatch.setattr(locks, "HEARTBEAT_S", 0.05)
    lock = locks.RunLock(tmp_path / "lock")
    lock.acquire()
    first = json.loads((tmp_path / "lock").read_text())["heartbeat"]
    deadline = time.monotonic() + 10
    beats = {first}
    while len(beats) < 3 and time.monotonic() < deadline:  # wait on the file's state, not for a time
        beats.add(json.loads((tmp_path / "lock").read_text())["heartbeat"])
        time.sleep(0.01)
    lock.release()
    assert len(beats) >= 3, beats
