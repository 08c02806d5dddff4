"""Since you left: a digest of what a run did while its person was away, kept in their cache, never in the run."""

from __future__ import annotations

import asyncio
import json
import time

from vaetui.runs.digest import Look, digest, key, last_look, list_digest, remember
from vaetui.runs.events import (
    EpochEvent, FailedEvent, FinishedEvent, StartedEvent, StepEvent, WarningEvent,
)
from vaetui.runs.history import History
from vaetui.runs.summaries import RunInfo

from fake_runs import make_finished_run


def _step(s):
    return StepEvent(step=s, epoch=1, epoch_step=s, steps_per_epoch=100, total_steps=300, loss=1.0, recon=1.0, kl=0.0,
                     beta=1.0, lr=1e-3, nats_per_dim=0.0, bits_per_dim=0.0, images_per_s=1.0, elapsed=float(s))


def history_at(step: int, alerts: int = 0, finished: bool = False) -> History:
    h = History("r")
    h.apply(StartedEvent(step=0, run="r", device="cpu", parameters=1, total_steps=300, steps_per_epoch=100))
    for s in range(1, step + 1):
        h.apply(_step(s))
        if s % 100 == 0:
            h.apply(EpochEvent(step=s, epoch=s // 100, train_loss=1, valid_loss=500.0 - s, train_recon=1, train_kl=0,
                               best=True))
    for k in range(alerts):
        h.apply(WarningEvent(step=step, message=f"rolled back {k}", cause="rollback"))
    if finished:
        h.apply(FinishedEvent(step=step, epoch=step // 100, reason="completed"))
    return h


def test_a_digest_says_steps_epochs_the_new_best_alerts_and_status():
    before = Look(step=100, epochs=1, status="running", best_valid=400.0, alerts=1, time=1000.0)
    text = digest(history_at(300, alerts=2, finished=True), before, now=1000.0 + 7200)
    lines = text.splitlines()
    assert lines[0] == "since you looked 2h00m ago:" or lines[0].startswith("since you looked 2h")
    assert "200 steps (now 300/300), 2 epochs (1 → 3)" in lines[1]
    assert "best validation 200.0 at epoch 3 (was 400.0)" in text
    assert "rollback: rolled back 1" in text and "rolled back 0" not in text  # the one new since, not the old
    assert "finished: completed at step 300" in text
    assert lines[-1] == "now finished (was running)"


def test_no_digest_without_a_before_or_without_news():
    h = history_at(100)
    assert digest(h, None) is None
    same = Look(step=100, epochs=1, status="running", best_valid=400.0, alerts=0, time=1.0)
    assert digest(h, same) is None


def test_failures_are_said(tmp_path):
    h = history_at(150)
    h.apply(FailedEvent(step=150, error="out of memory"))
    text = digest(h, Look(step=100, epochs=1, status="running", best_valid=400.0, alerts=0, time=1.0), now=61.0)
    assert "failed: failed at step 150: out of memory" in text and text.endswith("now failed (was running)")


def test_the_runs_list_digest_names_the_runs_that_moved(tmp_path):
    def info(name, step, status, best=None, updated=1.0):
        return RunInfo(name, "faces64", "synthetic", "64x64", 32, 1.0, step // 100, 3, step, best, status, updated)

    paths = {n: tmp_path / n for n in ("a", "b", "c")}
    looks = {key(paths["a"], "list"): Look(100, 1, "running", 300.0, 0, 10.0),
             key(paths["b"], "list"): Look(50, 0, "running", None, 0, 10.0)}
    text = list_digest([info("a", 300, "finished", 250.0, 5.0), info("b", 50, "running"),
                        info("c", 10, "running")], looks, paths, now=70.0)
    assert text.splitlines() == ["since you left (1m00s ago):", "a: +200 steps, best valid 250.0, running → finished"]


def test_the_tui_says_what_moved_and_keeps_the_look_in_the_cache_only(tmp_path, monkeypatch):
    from vaetui.ui.app import make_app
    from vaetui.ui.screens.monitor import MonitorScreen

    cache = tmp_path / "cache"
    monkeypatch.setenv("VAETUI_CACHE_DIR", str(cache))
    runs = tmp_path / "runs"
    path = make_finished_run(runs, name="r")
    remember({key(path, "monitor"): Look(20, 1, "running", None, 0, time.time() - 3600),
              key(path, "list"): Look(20, 1, "running", None, 0, time.time() - 3600)})
    before = sorted(p.name for p in path.rglob("*"))

    async def scenario():
        app = make_app(runs_dir=runs, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 30
            while app.screen.digest is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            listed = app.screen.digest
            app.open_run("r")
            while not (isinstance(app.screen, MonitorScreen) and app.screen.view.history.step == 60) \
                    and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.pause(0.1)
            return listed, app.screen.digest

    listed, monitored = asyncio.run(scenario())
    assert "r: +40 steps, best valid 3120.4, running → finished" in listed
    assert "40 steps (now 60/60)" in monitored and "now finished (was running)" in monitored
    assert last_look(path, "monitor").step == 60 and last_look(path, "list").step == 60  # remembered on leaving
    assert sorted(p.name for p in path.rglob("*")) == before  # nothing written into the run
    assert json.loads((cache / "looked.json").read_text())


def test_vaetui_runs_says_what_moved_since_it_was_last_listed(tmp_path, monkeypatch, capsys):
    from vaetui.cli import main

    monkeypatch.setenv("VAETUI_CACHE_DIR", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    path = make_finished_run(runs, name="r")
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    assert "since you left" not in capsys.readouterr().out  # the first listing: no "since"
    remember({key(path, "list"): Look(20, 1, "running", None, 0, time.time() - 120)})  # as if seen at step 20
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "since you left (2m" in out and "r: +40 steps, best valid 3120.4, running → finished" in out
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    assert "since you left" not in capsys.readouterr().out  # nothing moved since the last listing
