"""A log rewritten in place (the same inode, as ext4 often hands back) and grown past a follower's offset is still
seen as rewritten: by the follower, the history and the runs list's summary cache."""

from __future__ import annotations

import json
import os

import vaetui.runs.logfile as logfile
from vaetui.runs.history import RunHistory
from vaetui.runs.logfile import EventLog, LogFollower
from vaetui.runs.store import Run
from vaetui.runs.summaries import Summaries

from fake_runs import make_finished_run


def _in_place(path, data, **_):
    """A rewrite that keeps the inode (what a filesystem reusing the freed inode amounts to)."""
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(data)
    return path


def _step(step: int, loss: float) -> dict:
    return {"type": "step", "step": step, "time": 1e9 + step, "epoch": 1, "epoch_step": step, "steps_per_epoch": 100,
            "total_steps": 100, "loss": loss, "recon": loss, "kl": 1.0, "beta": 1.0, "lr": 1e-3,
            "nats_per_dim": 0.1, "bits_per_dim": 0.1, "images_per_s": 1.0, "elapsed": step, "nonfinite": 0}


def test_a_follower_sees_a_rewrite_that_kept_the_inode_and_grew_past_its_offset(tmp_path, monkeypatch):
    log = EventLog(tmp_path / "metrics.jsonl")
    for step in range(1, 11):
        log.append(_step(step, 10.0))
    follower = LogFollower(log.path)
    events, reset = follower.read()
    assert [e["step"] for e in events] == list(range(1, 11)) and not reset
    inode = os.stat(log.path).st_ino
    monkeypatch.setattr(logfile, "atomic_write_bytes", _in_place)
    log.truncate_after(4)  # a resume from step 4
    for step in range(5, 40):
        log.append(_step(step, 123456.0))  # the resumed run, longer than before
    assert os.stat(log.path).st_ino == inode and os.stat(log.path).st_size > follower.offset
    events, reset = follower.read()
    assert reset
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert steps == list(range(1, 40))  # read again from the start: each step once, none lost
    assert [e["loss"] for e in events if e["type"] == "step"][4:] == [123456.0] * 35


def test_the_history_folds_a_rewritten_log_again(tmp_path, monkeypatch):
    log = EventLog(tmp_path / "metrics.jsonl")
    for step in range(1, 11):
        log.append(_step(step, 10.0))
    rh = RunHistory(log.path, "r", 1, steps="all")
    rh.refresh()
    monkeypatch.setattr(logfile, "atomic_write_bytes", _in_place)
    log.truncate_after(4)
    for step in range(5, 40):
        log.append(_step(step, 5.0))
    changed, reset = rh.refresh()
    assert reset and rh.history.step == 39


def test_the_summary_cache_is_not_fooled_by_a_rewrite_that_kept_the_inode(tmp_path, monkeypatch):
    """A warm `vaetui runs` reported the run as it was before the rewrite (finished); a fresh fold: interrupted."""
    path = make_finished_run(tmp_path / "runs", steps=100, spe=50)
    assert Summaries(tmp_path / "cache").line(Run(path)).status == "finished"  # the warm cache
    monkeypatch.setattr(logfile, "atomic_write_bytes", _in_place)
    log = EventLog(path / "metrics.jsonl")
    size = log.path.stat().st_size
    log.truncate_after(40)  # resumed from step 40 ...
    for step in range(41, 300):
        log.append(_step(step, 3000.0))  # ... and killed later, past the old end, without a word
    assert log.path.stat().st_size > size
    fresh = Summaries(tmp_path / "fresh").line(Run(path))
    warm = Summaries(tmp_path / "cache").line(Run(path))
    assert fresh.status == "interrupted"
    assert (warm.status, warm.step) == (fresh.status, fresh.step)


def test_a_rewritten_log_begins_with_a_new_generation_that_readers_skip(tmp_path):
    log = EventLog(tmp_path / "metrics.jsonl")
    for step in range(1, 6):
        log.append(_step(step, 1.0))
    log.truncate_after(3)
    log.truncate_after(2)
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert lines[0]["type"] == "log" and lines[0]["generation"] == 2  # one header, counting the rewrites
    assert [e["step"] for e in lines[1:]] == [1, 2]
    rh = RunHistory(log.path, "r", 1, steps="all")
    rh.refresh()
    assert rh.history.step == 2
