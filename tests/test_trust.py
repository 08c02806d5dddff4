"""Nothing lost, nothing misreported: each test here failed on the code before the fix (issue "Trust").

The item numbers in the docstrings are the issue's.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import vaetui.train.engine as engine
import vaetui.train.observe as observe
from vaetui.errors import RunError
from vaetui.runs.events import EpochEvent, WarningEvent
from vaetui.models.losses import LossTerms
from vaetui.runs.store import RunStore

from helpers import tiny_config, train

REPO = Path(__file__).resolve().parents[1]
VAETUI = [sys.executable, "-m", "vaetui"]


def nan_at(monkeypatch, calls: set[int]):
    """Make the training loss non-finite at these training calls (1-based); validation is left alone."""
    real = engine.vae_loss
    seen = {"n": 0}

    def flaky(logits, x, mu, logvar, beta, likelihood, free_bits=0.0):
        terms = real(logits, x, mu, logvar, beta, likelihood, free_bits)
        if not torch.is_grad_enabled():
            return terms
        seen["n"] += 1
        if seen["n"] in calls:
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(engine, "vae_loss", flaky)


def step_of(path) -> int:
    return int(torch.load(path, weights_only=True)["step"])


def logged(run):
    """Every line of metrics.jsonl, parsed (a line that does not parse fails the test)."""
    return [json.loads(line) for line in run.metrics_path.read_text().splitlines()]


# ---------------------------------------------------------------------------- 1. a skipped step skips nothing else
def test_nonfinite_last_step_of_an_epoch_still_ends_the_epoch(tmp_path, monkeypatch):
    """1. A NaN on the epoch's last step: the epoch still has its eval, epoch event and ckpt-epoch-N."""
    nan_at(monkeypatch, {8})  # 8 steps per epoch: call 8 is epoch 1's last step
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "e", tiny_config(epochs=2))
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [(e.epoch, e.step) for e in epochs] == [(1, 8), (2, 16)]
    assert step_of(run.checkpoint_path("epoch-1")) == 8
    assert [e["epoch"] for e in logged(run) if e["type"] == "eval"] == [1, 2]


def test_nonfinite_last_step_of_the_run_still_saves_it(tmp_path, monkeypatch):
    """1. A NaN on the run's last step: ckpt-latest holds the last step, and the last epoch ended."""
    nan_at(monkeypatch, {16})
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "last", tiny_config(epochs=2, checkpoint_every=3))
    assert events[-1].kind == "finished" and events[-1].step == 16
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert state["step"] == 16
    assert [e.epoch for e in events if isinstance(e, EpochEvent)] == [1, 2]


# ---------------------------------------------------------------------------- 2. roll-back and the log
def test_rollback_truncates_the_log_and_keeps_its_counters(tmp_path, monkeypatch):
    """2. After a roll-back the log has each step once, and the checkpoint keeps the roll-back count."""
    nan_at(monkeypatch, {2, 6, 7, 8, 9, 10})
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "rb", tiny_config(max_steps=12, checkpoint_every=3))
    assert any("rolled back" in e.message for e in events if isinstance(e, WarningEvent))
    steps = [e["step"] for e in logged(run) if e["type"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 12
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert state["rollbacks"] == 1 and state["nonfinite_total"] == 6


# ---------------------------------------------------------------------------- 3. the newest checkpoint
def test_resume_takes_the_newest_good_checkpoint_by_step(tmp_path):
    """3. Killed inside the epoch end (epoch-1 written, latest not yet): resume from epoch-1, not the older latest."""
    store = RunStore(tmp_path, include_demo=False)
    a, _ = train(store, "a", tiny_config(max_steps=8, checkpoint_every=3))
    b, _ = train(store, "b", tiny_config(max_steps=6, checkpoint_every=3))
    shutil.copy(b.checkpoint_path("latest"), a.checkpoint_path("latest"))  # latest: step 6; epoch-1: step 8
    _, events = train(store, "a", tiny_config(max_steps=10, checkpoint_every=3), resume=True)
    assert events[0].kind == "started" and events[0].resumed and events[0].step == 8


# ---------------------------------------------------------------------------- 4. across devices
@pytest.mark.parametrize("with_device", [True, False])
def test_resume_on_cpu_from_a_cuda_generator_state(tmp_path, with_device):
    """4. A checkpoint whose noise generator was CUDA's (16 bytes of seed and offset) resumes on the CPU."""
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "g", tiny_config(max_steps=4))
    path = run.checkpoint_path("latest")
    state = torch.load(path, weights_only=True)
    state["noise_rng"] = torch.zeros(16, dtype=torch.uint8)
    if with_device:
        state["noise_device"] = "cuda"
    else:
        state.pop("noise_device", None)  # a checkpoint from before the device was recorded
    torch.save(state, path)
    copy = tmp_path / "copy.pt"
    shutil.copy(path, copy)
    _, events = train(store, "g", tiny_config(max_steps=8), resume=True)
    assert events[-1].kind == "finished" and events[-1].step == 8
    assert any("reseeded" in e.message for e in events if isinstance(e, WarningEvent))
    first = run.load_checkpoint("latest", fallback=False)[0]["model"]
    assert run.load_checkpoint("latest", fallback=False)[0]["noise_device"] == "cpu"
    # The reseeding is deterministic: the same checkpoint resumed again gives the same weights.
    for p in run.path.glob("ckpt-*.pt"):
        p.unlink()
    shutil.copy(copy, path)
    train(store, "g", tiny_config(max_steps=8), resume=True)
    again = run.load_checkpoint("latest", fallback=False)[0]["model"]
    assert all(torch.equal(first[k], again[k]) for k in first)


# ---------------------------------------------------------------------------- 5. the log itself
def test_a_torn_last_line_does_not_swallow_the_next_event(tmp_path):
    """5. A kill mid-append leaves half a line: it is trimmed before the next append, nothing glues to it."""
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "t", tiny_config(max_steps=4))
    with open(run.metrics_path, "ab") as fh:
        fh.write(b'{"type":"step","step":5,"time":1.0,"epo')
    _, events = train(store, "t", tiny_config(max_steps=8), resume=True)
    lines = logged(run)  # every line parses
    started = [e for e in lines if e["type"] == "started"]
    assert started[-1]["resumed"] and started[-1]["step"] == 4
    assert lines[-1]["type"] == "finished" and lines[-1]["step"] == 8


def test_the_log_is_fsynced_with_every_checkpoint(tmp_path, monkeypatch):
    """5. Each checkpoint write also makes metrics.jsonl durable."""
    synced: list[str] = []
    real = os.fsync

    def spy(fd):
        try:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "s", tiny_config(max_steps=6, checkpoint_every=3))
    checkpoints = [e for e in events if e.kind == "checkpoint"]
    assert checkpoints
    assert sum(p.endswith("/s/metrics.jsonl") for p in synced) >= len(checkpoints)


# ---------------------------------------------------------------------------- 7. the lock
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
    """7. Processes that try to lock the same run at the same instant: exactly one gets it, every time."""
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
    """7. Two `vaetui train --resume` on one run at the same instant: one trains, one exits non-zero in one line."""
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
    """7. The CI failure: the winner of the lock swept the loser's in-flight .config.json temp file away.

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
    """7. `vaetui train --resume RUN --epochs 5` while another process trains RUN: refused, config.json untouched."""
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
    """7. A holder on another host: its heartbeat moving -> refused, naming host and silence; standing still for
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
    """8. A damaged lock crashed `vaetui runs` for every run, and `train --resume`."""
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
    """8. The heartbeat was rewritten as truncate-then-write: a reader between the two saw an empty lock (no
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


# ---------------------------------------------------------------------------- 9. file modes
def test_every_file_follows_the_umask(tmp_path):
    """9. Files written through temp files follow the user's umask like the others (were -rw-------)."""
    from fakes import make_messy_folder

    folder = make_messy_folder(tmp_path / "faces", n=24)
    env = {**os.environ, "VAETUI_CACHE_DIR": str(tmp_path / "cache")}
    runs = tmp_path / "runs"

    def sh(*args):
        out = subprocess.run([*VAETUI, *args], capture_output=True, text=True, env=env,
                             preexec_fn=lambda: os.umask(0o027))
        assert out.returncode == 0, out.stderr

    sh("train", "--preset", "tiny", "--max-steps", "4", "--runs-dir", str(runs), "--name", "u", "--threads", "1",
       "--log-format", "json")
    sh("eval", "u", "--runs-dir", str(runs), "--n", "8", "--k", "2")
    sh("data", "preview", "--data", "folder", "--data-root", str(folder), "--size", "32", "--n", "4",
       "--out", str(tmp_path / "out" / "grid.png"))
    written = [p for p in [*runs.rglob("*"), *(tmp_path / "cache").rglob("*"), tmp_path / "out" / "grid.png"]
               if p.is_file()]
    assert len(written) > 8
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in written}
    assert {k: v for k, v in modes.items() if v != oct(0o640)} == {}


# ---------------------------------------------------------------------------- 11. best under one objective
def test_best_checkpoint_compares_epochs_at_the_final_beta(tmp_path, monkeypatch):
    """11. During KL warm-up, epochs are compared at the run's final β, not at each epoch's warm-up β."""
    real = engine.vae_loss
    calls = {"n": 0}
    # (recon, KL) per image of the validation batches: epoch 1 then epoch 2 (two batches each).
    values = [(100.0, 50.0)] * 2 + [(110.0, 10.0)] * 2

    def fake(logits, x, mu, logvar, beta, likelihood, free_bits=0.0):
        if torch.is_grad_enabled():
            return real(logits, x, mu, logvar, beta, likelihood, free_bits)
        recon, kl = values[min(calls["n"], len(values) - 1)]
        calls["n"] += 1
        n = x.shape[0]
        r, k = torch.tensor(recon * n), torch.tensor(kl * n)
        return LossTerms((r + beta * k) / n, r, k, n)

    monkeypatch.setattr(engine, "vae_loss", fake)
    monkeypatch.setattr(observe, "vae_loss", fake)  # validation runs there
    store = RunStore(tmp_path, include_demo=False)
    # β warms up over 80 steps: 0.1 after epoch 1, 0.2 after epoch 2; the final β is 1.
    run, events = train(store, "best", tiny_config(epochs=2, beta=1.0, kl_warmup=80))
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [round(e.valid_loss) for e in epochs] == [150, 120]
    assert step_of(run.checkpoint_path("best")) == 16


# ---------------------------------------------------------------------------- 12. one word
def test_a_stopped_run_is_stopped_everywhere(tmp_path):
    """12. The runs list, `vaetui runs` and the monitor's history all call a stopped run 'stopped'."""
    from vaetui.train.engine import Control, Trainer

    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(epochs=50), "halt")
    control = Control()
    for event in Trainer(run.config(), run).run(control):
        if event.kind == "step" and event.step == 3:
            control.stop()
    assert run.info().status == "stopped"
    assert run.history().status == "stopped"
    out = subprocess.run([*VAETUI, "runs", "--runs-dir", str(tmp_path)], capture_output=True, text=True)
    assert "stopped" in out.stdout and "interrupted" not in out.stdout


def test_a_lock_file_replaced_between_open_and_flock_is_not_taken(tmp_path, monkeypatch):
    """8. The replaced-file guard: a taker whose open() got the old file, removed and made anew by another taker
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
    """8. A holder that never refreshes its heartbeat is taken for dead by every other host after 2 minutes."""
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
