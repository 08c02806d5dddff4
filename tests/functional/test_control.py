"""Intents from other processes: the run's control file, applied by the trainer's watcher between steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from vaetui.train.control import Control, ControlFile, ControlWatcher
from vaetui.runs.store import RunStore

from helpers import tiny_config

VAETUI = [sys.executable, "-m", "vaetui"]


def test_the_watcher_applies_each_new_line_once(tmp_path):
    control = Control()
    watcher = ControlWatcher(tmp_path, control)
    asked = ControlFile(tmp_path)
    asked.pause()
    asked.checkpoint()
    watcher.poll()
    assert control.paused.is_set() and control.checkpoint_requested.is_set()
    control.checkpoint_requested.clear()
    watcher.poll()  # nothing new: the checkpoint is not asked again
    assert not control.checkpoint_requested.is_set() and control.paused.is_set()
    asked.resume()
    asked.stop()
    watcher.poll()
    assert not control.paused.is_set() and control.stop_requested.is_set()


def test_intents_written_before_the_trainer_started_are_a_former_trainers(tmp_path, monkeypatch):
    from vaetui.train.control import FROM_ENV

    monkeypatch.delenv(FROM_ENV, raising=False)
    (tmp_path / "control.jsonl").write_text(json.dumps({"intent": "stop", "time": time.time() + 3600}) + "\n"
                                            + "not json\n")
    control = Control()
    watcher = ControlWatcher(tmp_path, control)
    watcher.poll()
    assert not control.stop_requested.is_set()  # stamped in the future by a clock ahead of ours: still old
    ControlFile(tmp_path).stop()
    watcher.poll()
    assert control.stop_requested.is_set()


def test_a_damaged_line_does_not_lose_the_intents_beside_it(tmp_path, monkeypatch):
    """One damaged line in control.jsonl lost a real stop read in the same poll."""
    from vaetui.train.control import FROM_ENV

    monkeypatch.delenv(FROM_ENV, raising=False)
    control = Control()
    watcher = ControlWatcher(tmp_path, control)
    with (tmp_path / "control.jsonl").open("a") as fh:
        fh.write(json.dumps({"intent": "pause", "time": "soon"}) + "\n")
        fh.write('{"intent": "checkpoint", "time": [1]}\n[1, 2]\n"stop"\n')
        fh.write(json.dumps({"intent": "stop", "time": 0.0, "by": "node-b:1"}) + "\n")  # a clock far behind ours
    watcher.poll()
    assert control.paused.is_set() and control.checkpoint_requested.is_set() and control.stop_requested.is_set()


def _events(run):
    return [json.loads(line) for line in run.metrics_path.read_text().splitlines()]


def _wait(predicate, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_stop_written_just_before_this_trainer_started_is_not_for_it(tmp_path, monkeypatch):
    """The race CI hit: a stop for the trainer before, written just before a resume started; and a key pressed
    while the trainer was still starting, which is for it."""
    from vaetui.train.control import FROM_ENV

    asked = tmp_path / "control.jsonl"
    asked.write_text(json.dumps({"intent": "stop", "time": time.time() + 5}) + "\n")
    monkeypatch.setenv(FROM_ENV, str(asked.stat().st_size))  # what a window that spawns a trainer passes it
    with asked.open("a") as fh:  # pressed while the trainer was still starting, by a host whose clock is behind
        fh.write(json.dumps({"intent": "pause", "time": 12.0}) + "\n")
    control = Control()
    watcher = ControlWatcher(tmp_path, control)
    watcher.poll()
    assert control.paused.is_set() and not control.stop_requested.is_set()


def test_without_a_window_a_trainer_takes_the_intents_written_since_it_began(tmp_path, monkeypatch):
    from vaetui.train.control import FROM_ENV, intents_from

    path = tmp_path / "control.jsonl"
    monkeypatch.delenv(FROM_ENV, raising=False)
    assert intents_from(path) == 0
    path.write_text("x" * 10)
    assert intents_from(path) == 10
    monkeypatch.setenv(FROM_ENV, "4")
    assert intents_from(path) == 4
    monkeypatch.setenv(FROM_ENV, "garbage")
    assert intents_from(path) == 10


def test_another_process_pauses_checkpoints_resumes_and_stops_a_headless_trainer(tmp_path):
    """What `p`, `c` and `s` in any window do to `vaetui train` running in another terminal."""
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(epochs=5000, checkpoint_every=100000), "far")
    proc = subprocess.Popen([*VAETUI, "train", "--resume", "far", "--runs-dir", str(tmp_path), "--threads", "1",
                             "--log-format", "json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        asked = ControlFile(run.path)
        _wait(lambda: run.metrics_path.exists() and any(e["type"] == "step" for e in _events(run)))
        asked.pause()
        _wait(lambda: any(e["type"] == "state" and e["state"] == "paused" for e in _events(run)))
        paused_at = _events(run)[-1]["step"]
        saved = lambda: [e for e in _events(run) if e["type"] == "checkpoint" and e["step"] == paused_at]  # noqa: E731
        before = len(saved())  # an epoch that ended just before the pause saved its own
        asked.checkpoint()
        _wait(lambda: len(saved()) == before + 1)
        asked.checkpoint()  # served too: the paused trainer went round its loop again, and trained no step
        _wait(lambda: len(saved()) == before + 2)
        assert [e["label"] for e in saved()[before:]] == ["latest", "latest"]
        assert max(e["step"] for e in _events(run)) == paused_at  # checkpoints while paused, no steps
        asked.resume()
        _wait(lambda: max(e["step"] for e in _events(run)) > paused_at)
        asked.stop()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
    last = _events(run)[-1]
    assert last["type"] == "finished" and last["reason"] == "stopped"
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert state["step"] == last["step"]
    # the stop it was asked for stays in the file, and a resume is not stopped by it
    out = subprocess.run([*VAETUI, "train", "--resume", "far", "--runs-dir", str(tmp_path), "--threads", "1",
                          "--max-steps", str(last["step"] + 3), "--log-format", "json"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["reason"] == "max_steps"


def test_where_intents_begin_is_clamped_to_the_file(tmp_path, monkeypatch):
    """A start past the file's end (it was replaced by a shorter one) still reads what is appended next; a
    negative one reads from the start."""
    from vaetui.train.control import FROM_ENV, intents_from

    path = tmp_path / "control.jsonl"
    monkeypatch.setenv(FROM_ENV, "-3")
    assert intents_from(path) == 0
    monkeypatch.setenv(FROM_ENV, "0")
    path.write_text(json.dumps({"intent": "pause"}) + "\n")
    control = Control()
    ControlWatcher(tmp_path, control).poll()
    assert control.paused.is_set()  # 0: everything in the file is for this trainer
    monkeypatch.setenv(FROM_ENV, "100000")
    control = Control()
    watcher = ControlWatcher(tmp_path, control)
    watcher.poll()
    assert not control.paused.is_set()
    ControlFile(tmp_path).stop()
    watcher.poll()
    assert control.stop_requested.is_set()
    line = json.loads(path.read_text().splitlines()[-1])
    assert line["intent"] == "stop" and line["by"].endswith(f":{os.getpid()}") and line["time"] > 0
