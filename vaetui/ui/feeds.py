"""How a run reaches the screen: one flow, one feed.

Every run on screen is followed the same way, whoever trains it: a run this window
started (a `vaetui train` child process, vaetui.train.process), one trained by `vaetui train` in
another terminal, torchrun, or a study's worker. `TailFeed` is the body of a worker
thread that follows the run's metrics.jsonl and posts (vaetui.ui.messages) first the
history so far (folded in the worker, off the UI thread), then the events as they come,
at most a few times a second, with pictures already loaded; and now and then whether
the run is alive and what its trainer costs. The app folds what it receives into a
`RunView`; the monitor draws a RunView and never asks who feeds it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image as PILImage

from vaetui.config.settings import RunConfig
from vaetui.runs.alerts import QuietWatch, quiet_after
from vaetui.runs.events import FailedEvent, FinishedEvent, ImagesEvent, StartedEvent, StateEvent
from vaetui.runs.history import History, RunHistory, events_in
from vaetui.runs.store import Run
from vaetui.sysstats import ProcessStats, Stats
from vaetui.train.control import Intent
from vaetui.ui.messages import HistoryLoaded, RunAlert, RunAlive, RunEvents

POST_EVERY_S = 0.25  # the UI hears from a feed at most ~4 times a second
ALIVE_EVERY_S = 3.0  # liveness and process stats
FOLLOW_EVERY_S = 0.5  # a followed log is read this often
QUICK_BYTES = 16 << 20  # a longer log is first shown from its non-step events and newest steps
FIRST_FRAME_S = 0.5  # the quiet pause between a long log's first look and its full fold

Post = Callable[[object], None]
Cancelled = Callable[[], bool]


@dataclass
class RunView:
    """What the app knows of one run on screen, folded from a feed's messages (UI thread only)."""

    run: str
    history: History
    picture: PILImage.Image | None = None
    alive: bool | None = None  # None: not known yet (nothing is claimed about it)
    where: str = ""
    stats: Stats | None = None
    pending: list[str] = field(default_factory=list)  # "start", or intents sent (Intent), not yet answered by an event

    def fold(self, events) -> None:
        for event in events:
            self.history.apply(event)
            if isinstance(event, (StateEvent, StartedEvent)) and Intent.PAUSE in self.pending:
                self.pending.remove(Intent.PAUSE)
            if isinstance(event, StartedEvent) and "start" in self.pending:
                self.pending.remove("start")
            if isinstance(event, (FinishedEvent, FailedEvent)):
                self.pending.clear()


def load_picture(run: Run, relpath: str) -> PILImage.Image | None:
    """A stored snapshot PNG as RGB (None when it is gone or unreadable)."""
    try:
        with PILImage.open(run.path / relpath) as im:
            return im.convert("RGB")
    except OSError:
        return None


def newest_picture(run: Run, history: History) -> PILImage.Image | None:
    return load_picture(run, history.snapshots[-1][1]) if history.snapshots else None


class TailFeed:
    """Follows the log of a run, whichever process trains it (own_pid: the trainer this window started)."""

    def __init__(self, run: Run, config: RunConfig, own_pid: int | None = None):
        self.run, self.config, self.own_pid = run, config, own_pid

    def _history(self) -> tuple[RunHistory, bool]:
        """The log folded from the start: (its RunHistory, True when only the newest step points are in yet)."""
        rh = RunHistory(self.run.metrics_path, self.run.name, self.config.train.epochs)
        quick = rh.follower.size() > QUICK_BYTES
        rh.refresh(defer_steps=quick)
        return rh, quick

    def work(self, post: Post, cancelled: Cancelled) -> None:
        name = self.run.name
        alive = self._alive_poster(post)
        alive(force=True)  # first: the first frame already knows whether the run is live
        rh, quick = self._history()
        post(HistoryLoaded(name, rh.history, newest_picture(self.run, rh.history)))
        if quick and not cancelled():  # now every old step too, for the full chart (seconds on a long log)
            time.sleep(FIRST_FRAME_S)  # but first let the UI thread draw what it has, without competing
            rh = RunHistory(self.run.metrics_path, name, self.config.train.epochs)
            rh.refresh()
            post(HistoryLoaded(name, rh.history, newest_picture(self.run, rh.history)))
        follower = rh.follower  # from here on this worker only reads and parses; the UI folds
        quiet = QuietWatch(quiet_after())
        running, step = rh.history.status == "running", rh.history.step
        while not cancelled():
            time.sleep(FOLLOW_EVERY_S)
            data, reset = follower.read_bytes()
            turned = reset  # a trainer that starts, pauses or ends changes who holds the run: said at once
            if reset:  # the log was rewritten (a resume): fold it again from the start
                rh, _ = self._history()
                follower = rh.follower
                running, step = rh.history.status == "running", rh.history.step
                post(HistoryLoaded(name, rh.history, newest_picture(self.run, rh.history)))
            elif data:
                events = events_in(data)
                images = [e for e in events if isinstance(e, ImagesEvent) and e.path]
                picture = load_picture(self.run, images[-1].path) if images else None
                post(RunEvents(name, events, picture))
                turned = any(isinstance(e, (StartedEvent, StateEvent, FinishedEvent, FailedEvent)) for e in events)
                running, step = _running(running, events), max([step, *(e.step for e in events)])
            if reset or data:
                quiet.heard()
            alive(force=turned)
            alert = quiet.check(name, step, running and alive.live)
            if alert is not None:
                post(RunAlert(name, alert))

    def _alive_poster(self, post: Post):
        state = {"at": 0.0, "last": None, "stats": None, "pid": None}

        def alive(force: bool = False) -> None:
            now = time.monotonic()
            if not force and now - state["at"] < ALIVE_EVERY_S:
                return
            state["at"] = now
            trainer = self.run.live_trainer()
            live = alive.live = trainer is not None
            here = live and trainer.here
            if here and state["pid"] != trainer.pid:
                state["pid"], state["stats"] = trainer.pid, ProcessStats(trainer.pid)
            stats = state["stats"].sample() if here and state["stats"] else None
            mine = here and trainer.pid == self.own_pid
            where = "here" if mine else "elsewhere" if here else (trainer.host if live else "")
            message = (live, where, stats)
            if force or message != state["last"] or stats is not None:
                state["last"] = message
                post(RunAlive(self.run.name, live, stats, where))

        alive.live = False
        return alive


def _running(was: bool, events) -> bool:
    """Whether the run is training (not paused, not ended) after these events: when silence is news."""
    for e in events:
        if isinstance(e, StartedEvent):
            was = True
        elif isinstance(e, StateEvent):
            was = e.state != "paused"
        elif isinstance(e, (FinishedEvent, FailedEvent)):
            was = False
    return was
