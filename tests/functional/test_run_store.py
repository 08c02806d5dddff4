import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from vaetui.errors import CheckpointError, RunError
from vaetui.runs.store import RunStore, load_checkpoint_file, validate_name

from helpers import tiny_config, train

REPO = Path(__file__).resolve().parents[2]


def flip_bit_in_tensor_data(path: Path) -> None:
    """Flip one bit inside a stored tensor (not in the zip's headers)."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    # Local header: 30 bytes + name + extra, then the (stored, uncompressed) data.
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_flipped_bit_is_detected_and_previous_checkpoint_used(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "r")
    latest = run.checkpoint_path("latest")
    # torch.load alone would not notice: that is why CRCs are checked.
    flip_bit_in_tensor_data(latest)
    torch.load(latest, weights_only=True)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint_file(latest)
    state, used, warnings = run.load_checkpoint("latest")
    assert used.name == "ckpt-epoch-2.pt" and warnings and "corrupt" in warnings[0]
    assert state["step"] == 16


def test_truncated_and_garbage_checkpoints(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "t")
    latest = run.checkpoint_path("latest")
    latest.write_bytes(latest.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint_file(latest)
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_checkpoint_file(bad)
    for p in run.path.glob("ckpt-*.pt"):
        p.write_bytes(b"")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        run.load_checkpoint("latest")


def test_run_names_are_validated(tmp_path):
    for bad in ("../evil", "a/b", "", ".hidden", "x" * 200, "a..b"):
        with pytest.raises(RunError):
            validate_name(bad)
    store = RunStore(tmp_path, include_demo=False)
    with pytest.raises(RunError):
        store.create(tiny_config(), "../../etc")
    store.create(tiny_config(), "ok-1.2_x")
    with pytest.raises(RunError, match="already exists"):
        store.create(tiny_config(), "ok-1.2_x")
    with pytest.raises(RunError, match="no run named"):
        store.open("missing")


def test_lock_stops_a_second_trainer_and_dead_locks_are_taken_over(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(), "l")
    assert run.acquire_lock() is None
    other = store.open("l")
    # A live holder (this process, holding it) refuses a second trainer.
    with pytest.raises(RunError, match="being trained by pid"):
        other.acquire_lock()
    assert other.info().status == "running"
    run.release_lock()
    # A lock left by a dead process is taken over with a warning.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run.lock_path.write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "time": 0}))
    warning = other.acquire_lock()
    assert warning and "no longer running" in warning
    other.release_lock()


def test_info_and_runs_json(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    train(store, "one")
    out = subprocess.run([sys.executable, "-m", "vaetui", "runs", "--json", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    row = next(r for r in rows if r["name"] == "one")
    assert row["status"] == "finished" and row["epochs_done"] == 2 and row["latent"] == 8
    out = subprocess.run([sys.executable, "-m", "vaetui", "runs", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert "one" in out.stdout and "finished" in out.stdout


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _steps_logged(run_dir: Path) -> int:
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return max([json.loads(x)["step"] for x in lines if '"step"' in x and x.endswith("}")] or [0])


TRAIN = [sys.executable, "-m", "vaetui", "train", "--preset", "tiny", "--dataset-size", "128",
         "--batch-size", "16", "--threads", "1", "--log-format", "json"]


def test_sigint_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    proc = subprocess.Popen([*TRAIN, "--epochs", "500", "--runs-dir", str(tmp_path), "--name", "s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "s"
    assert _wait_for(lambda: _steps_logged(run_dir) >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "finished" and events[-1]["reason"] == "stopped"
    state, _, _ = RunStore(tmp_path).open("s").load_checkpoint("latest", fallback=False)
    assert state["step"] == events[-1]["step"]
    assert not (run_dir / "lock").exists()


STALL = r"""
import os, sys, time
marker = sys.argv[1]
def stall():
    open(marker, "w").write("stalled")  # the moment is reached: the test kills us here
    time.sleep(60)
"""
KILL_AT = {
    # inside a training step: after the forward pass, before the update
    "mid-step": r"""
import torch, vaetui.models.families as families
real_loss, calls = families.vae_loss, [0]
def slow(*args):
    terms = real_loss(*args)
    if torch.is_grad_enabled():
        calls[0] += 1
        if calls[0] == 6:
            stall()
    return terms
families.vae_loss = slow
""",
    # half of an event line is on disk
    "mid-append": r"""
import vaetui.runs.store as runs
real_write = runs.os.write
def torn(fd, data):
    if b'"type":"step","step":5,' in data:
        real_write(fd, data[: len(data) // 2])
        stall()
    return real_write(fd, data)
runs.os.write = torn
""",
    # the snapshot PNG is written to its temp file, not yet renamed
    "mid-snapshot": r"""
import vaetui.disk.files as files
real_sync = files.fsync_file
def slow(path):
    if "snapshots" in str(path) and "step-00000004" in str(path):
        stall()
    return real_sync(path)
files.fsync_file = slow
""",
    # the checkpoint's temp file is complete, the rename not yet done
    "mid-checkpoint": r"""
import vaetui.disk.files as files
real_replace = files.os.replace
def slow_replace(src, dst, *a, **k):
    if str(dst).endswith("ckpt-latest.pt") and os.path.exists(dst):
        stall()
    return real_replace(src, dst, *a, **k)
files.os.replace = slow_replace
""",
}
RUN_CLI = r"""
from vaetui.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("moment", list(KILL_AT))
def test_sigkill_at_any_moment_leaves_a_resumable_run(tmp_path, moment):
    """SIGKILL mid-step, mid-snapshot, mid-append and mid-checkpoint: the run resumes, the log parses, no debris."""
    marker = tmp_path / "marker"
    args = [*TRAIN[3:], "--epochs", "500", "--checkpoint-every", "3", "--runs-dir", str(tmp_path), "--name", "k"]
    proc = subprocess.Popen([sys.executable, "-c", STALL + KILL_AT[moment] + RUN_CLI, str(marker), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    assert _wait_for(marker.exists), proc.stderr.read() if proc.poll() is not None else f"never reached {moment}"
    proc.kill()
    proc.wait()
    run_dir = tmp_path / "k"
    if moment in ("mid-snapshot", "mid-checkpoint"):
        assert any(run_dir.rglob(".*.tmp"))  # the write really was cut off
    out = subprocess.run([*TRAIN, "--resume", "k", "--max-steps", "12", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert any(e["type"] == "warning" and "no longer running" in e["message"] for e in events)
    started = next(e for e in events if e["type"] == "started")
    assert started["resumed"] and started["step"] in (3, 6)
    assert events[-1]["type"] == "finished" and events[-1]["step"] == 12
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]  # every line parses
    steps = [e["step"] for e in logged if e["type"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 12
    assert not any(run_dir.rglob(".*.tmp"))


def test_resume_refuses_to_change_the_model(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    train(store, "m", tiny_config(max_steps=2))
    out = subprocess.run([*TRAIN[:4], "--resume", "m", "--latent", "4", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "latent" in out.stderr and "Traceback" not in out.stderr


def test_a_run_with_a_damaged_config_is_listed_as_damaged(tmp_path):
    """`vaetui runs` left it out without a word."""
    store = RunStore(tmp_path, include_demo=False)
    train(store, "good", tiny_config(max_steps=1))
    bad = store.create(tiny_config(), "bad")
    bad.config_path.write_text('{"model": ')
    assert {i.name: i.status for i in RunStore(tmp_path, include_demo=False).infos()} == {
        "bad": "damaged", "good": "stopped"}
    out = subprocess.run([sys.executable, "-m", "vaetui", "runs", "--runs-dir", str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and any(line.startswith("bad") and "damaged" in line for line in out.stdout.splitlines())


def test_a_run_ended_by_max_steps_before_its_epochs_is_stopped_not_finished(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    train(store, "short", tiny_config(epochs=2, max_steps=3))
    train(store, "whole", tiny_config(epochs=1, max_steps=8))  # max-steps and the epochs end together
    infos = {i.name: i for i in RunStore(tmp_path, include_demo=False).infos()}
    assert (infos["short"].status, infos["short"].epochs_done, infos["short"].epochs) == ("stopped", 0, 2)
    assert infos["whole"].status == "finished"
