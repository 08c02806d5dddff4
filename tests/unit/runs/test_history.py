"""The one fold: bounded series, the same history whichever way a log is read, incremental and reset-safe."""

from __future__ import annotations

import json
import math
import random

import pytest

from vaetui.runs.history import History, RunHistory
from vaetui.runs.logfile import EventLog, scan_lines
from vaetui.runs.series import BUCKETS, RECENT, Series

from fake_runs import make_finished_run


def test_a_series_stays_bounded_keeps_its_extremes_and_its_newest_points_exactly():
    rng = random.Random(0)
    ys = [rng.gauss(0, 1) for _ in range(200_000)]
    ys[12_345] = 50.0  # a spike in the old part
    ys[54_321] = -50.0
    one, bulk = Series(), Series()
    for x, y in enumerate(ys):
        one.add(x, y)
    for start in range(0, len(ys), 30_000):
        bulk.extend(list(range(start, min(start + 30_000, len(ys)))), ys[start:start + 30_000])
    for s in (one, bulk):
        xs, vs = s.points()
        assert len(s) <= RECENT + BUCKETS + 1 and s.count == len(ys)
        assert xs == sorted(xs)
        assert max(vs) == 50.0 and min(vs) == -50.0  # spikes survive downsampling
        assert vs[-RECENT:] == ys[-RECENT:] and xs[-1] == len(ys) - 1


def test_a_series_replaces_steps_seen_again():
    s = Series()
    for x in range(10):
        s.add(x, float(x))
    s.add(5, -1.0)  # after a roll-back the same step comes again
    xs, ys = s.points()
    assert xs == [0, 1, 2, 3, 4, 5] and ys[-1] == -1.0


def test_scan_lines_finds_step_lines_in_both_spellings():
    data = (b'{"type":"step","step":1}\n{"type": "step", "step": 2}\n{"type":"started","step":0}\n'
            b'{"type":"state","step":3}\nnot json\n{"type":"steps","step":4}\n')
    starts, ends, is_step = scan_lines(data)
    lines = [data[s:e] for s, e in zip(starts, ends)]
    assert [bool(v) for v in is_step[:5]] == [True, True, False, False, False], lines
    from vaetui.runs.events import EVENT_TYPES

    for kind in EVENT_TYPES:  # every event vaetui writes is told apart by the same three bytes
        _, _, flag = scan_lines(b'{"type":"' + kind.encode() + b'","step":1}\n')
        assert bool(flag[0]) == (kind == "step"), kind
    h = History()
    h.feed(data)  # a foreign line taken for a step ('steps') is skipped, not folded
    assert len(h.series["loss"]) == 0 and h.last is None


@pytest.fixture
def long_run(tmp_path):
    return make_finished_run(tmp_path, steps=3000, spe=500)


def test_every_way_of_reading_a_log_folds_the_same_history(long_run):
    """Whole, in small appended pieces, as a summary, and as a quick look: the same numbers."""
    path = long_run / "metrics.jsonl"
    whole = RunHistory(path)
    whole.refresh()
    data = path.read_bytes()
    pieces = History()
    cuts = [0]  # arbitrary cuts, each at a line boundary
    for k in range(7777, len(data), 7777):
        cuts.append(data.rfind(b"\n", 0, k) + 1)
    cuts.append(len(data))
    for a, b in zip(cuts, cuts[1:]):
        pieces.feed(data[a:b])
    summary, quick = RunHistory(path, steps="none"), RunHistory(path)
    summary.refresh()
    quick.refresh(defer_steps=True)
    h = whole.history
    assert (h.status, h.step, h.epochs_done, h.best_valid) == ("finished", 3000, 6, min(e.valid_loss for e in h.epochs))
    for other in (pieces, summary.history, quick.history):
        assert (other.status, other.step, other.epochs_done, other.best_valid) == \
            (h.status, h.step, h.epochs_done, h.best_valid)
        assert other.last.to_json() == h.last.to_json()
    assert pieces.events == h.events == summary.history.events
    for key in ("loss", "recon", "kl"):  # old points are bucketed by arrival: bounded, extremes kept, newest exact
        a, b = pieces.series[key], h.series[key]
        assert a.tail(RECENT) == b.tail(RECENT) and a.count == b.count
        assert (min(a.points()[1]), max(a.points()[1])) == (min(b.points()[1]), max(b.points()[1]))
    assert quick.history.series["loss"].tail(100) == h.series["loss"].tail(100)
    assert len(summary.history.series["loss"]) == 0  # a summary keeps no series


def test_refresh_reads_only_what_was_appended_and_starts_again_after_a_rewrite(tmp_path):
    log = EventLog(tmp_path / "metrics.jsonl")
    rh = RunHistory(log.path)
    log.append({"type": "started", "step": 0, "time": 1.0, "run": "r", "device": "cpu", "parameters": 1,
                "total_steps": 10, "steps_per_epoch": 5})
    for step in range(1, 6):
        log.append({"type": "step", "step": step, "time": 1.0 + step, "epoch": 1, "epoch_step": step,
                    "steps_per_epoch": 5, "total_steps": 10, "loss": 10.0 - step, "recon": 9.0, "kl": 1.0,
                    "beta": 1.0, "lr": 1e-3, "nats_per_dim": 0.1, "bits_per_dim": 0.1, "images_per_s": 1.0,
                    "elapsed": step, "nonfinite": 0})
    assert rh.refresh() == (True, False) and rh.history.step == 5
    assert rh.refresh() == (False, False)  # nothing appended: nothing read
    before = rh.history
    log.truncate_after(2)  # what a resume does: a rewritten, shorter log
    assert rh.refresh() == (True, True) and rh.history is not before and rh.history.step == 2
    assert json.loads(log.path.read_text().splitlines()[-1])["step"] == 2


def test_summary_state_round_trip(long_run):
    rh = RunHistory(long_run / "metrics.jsonl", steps="none")
    rh.refresh()
    again = History.from_state(json.loads(json.dumps(rh.history.state())))
    assert json.dumps(again.summary()) == json.dumps(rh.history.summary())  # (NaN never equals NaN)
    assert math.isclose(again.last.loss, rh.history.last.loss)


def test_a_later_process_reads_nothing_of_an_unchanged_run(tmp_path, monkeypatch):
    """Summaries on disk: an unchanged run is answered from its cached line; a grown one folds only the new bytes."""
    from vaetui.runs.store import Run
    from vaetui.runs.summaries import Summaries

    path = make_finished_run(tmp_path / "runs", steps=300, spe=100)
    first = Summaries(tmp_path / "cache").line(Run(path))
    folded = []
    real = RunHistory.refresh
    monkeypatch.setattr(RunHistory, "refresh", lambda self, **k: folded.append(self.follower.offset) or real(self, **k))
    again = Summaries(tmp_path / "cache").line(Run(path))  # a new process: a new Summaries
    assert again == first and folded == []
    size = (path / "metrics.jsonl").stat().st_size
    with open(path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "warning", "step": 300, "time": 2e9, "message": "appended"}) + "\n")
    grown = Summaries(tmp_path / "cache").line(Run(path))
    assert folded == [size]  # it continued from the cached offset, not from the start
    assert grown.updated >= first.updated and grown.step == first.step


def test_two_threads_asking_at_once_both_get_the_whole_fold(tmp_path, monkeypatch):
    """The runs list's worker can be restarted while it still folds: a second thread asking for the same
    run must wait for the fold, not see the log read to its end and cache a half-folded line for good."""
    import threading
    import time

    from vaetui.runs.store import Run
    from vaetui.runs.summaries import Summaries

    path = make_finished_run(tmp_path / "runs", steps=300, spe=100)
    real = History.feed

    def slow_feed(self, data, deferred=None):
        time.sleep(0.5)  # a long log's fold, in the middle of which the other thread asks
        return real(self, data, deferred)

    monkeypatch.setattr(History, "feed", slow_feed)
    summaries = Summaries(tmp_path / "cache")
    lines = []
    threads = [threading.Thread(target=lambda: lines.append(summaries.line(Run(path)))) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    monkeypatch.setattr(History, "feed", real)
    assert [line.status for line in lines] == ["finished", "finished"], lines
    assert [line.step for line in lines] == [300, 300]
    assert Summaries(tmp_path / "cache").line(Run(path)).status == "finished"  # and so is what it cached


def test_a_resume_with_more_epochs_changes_the_epoch_total(tmp_path):
    """A monitor open on a run resumed with more --epochs showed "epoch 43/50000" beside "step 340/720000"."""
    from vaetui.runs.store import RunStore

    from helpers import tiny_config, train

    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "r", tiny_config(epochs=1))
    rh = RunHistory(run.metrics_path, "r", 1, steps="all")  # the monitor, opened on the 1-epoch run
    rh.refresh()
    assert (rh.history.epochs_planned, rh.history.total_steps) == (1, 8)
    train(store, "r", tiny_config(epochs=3), resume=True)
    rh.refresh()
    assert (rh.history.epochs_planned, rh.history.total_steps) == (3, 24)
