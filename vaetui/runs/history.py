"""The one fold of a run's events into its history: what every screen and command reads.

metrics.jsonl is read here and nowhere else. `History` folds events (typed, or the raw
bytes of the log) into the series the charts draw, the epochs, the last evaluation,
the state of the run, its snapshots and log lines, and the summary line of the runs
list. `RunHistory` keeps a History current from the log's appended bytes only: it
remembers the file's identity (device, inode) and offset, and when the log is rewritten
shorter (a resume, a roll-back) it folds it again from the start.

Memory stays bounded for any run length: each series keeps its newest RECENT points
exactly and folds older ones into at most BUCKETS min/max buckets.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetui.format import is_finite
from vaetui.runs.alerts import alert_of
from vaetui.runs.events import describe
from vaetui.runs.events import (
    CheckpointEvent, EpochEvent, EvalEvent, Event, FailedEvent, FinishedEvent, ImagesEvent, StartedEvent, StateEvent,
    StepEvent, WarningEvent, event_from_json,
)
from vaetui.runs.logfile import LogFollower, parse_lines, scan_lines
from vaetui.runs.series import Columns, Series
from vaetui.runs.steplines import step_dims as _step_dims, step_point as _step_point, step_terms as _step_terms
from vaetui.runs.status import RunStatus

LOG_LINES = 500
ALERTS_KEPT = 100
HEAT_READ = 1024  # step lines of a chunk whose KL per dimension is read (their JSON costs 7x the fast split)
SERIES = ("loss", "recon", "kl", "valid")
SERIES_LABELS = {"loss": "total loss", "recon": "reconstruction", "kl": "KL", "valid": "validation"}
# A family's own loss terms (StepEvent.terms), short enough for the monitor's sparkline labels.
TERM_LABELS = {"iwae": "IWAE", "mi": "MI", "tc": "TC", "dwkl": "dim-KL", "kl_top": "KL top", "kl_low": "KL low",
               "commit": "commit", "perplexity": "perplx", "usage": "usage"}


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's end: mean train loss over it, the validation objective after it."""

    epoch: int
    step: int
    train_loss: float
    valid_loss: float
    train_recon: float
    train_kl: float
    best: bool
    valid_recon: float = math.nan
    valid_kl: float = math.nan


class History:
    """Everything known about a run from its events. `steps` chooses how much of the step series is kept.

    steps="all": every step event feeds the series (the monitor); "none": only the newest
    step event is kept (summaries: cheap on a million events).
    """

    def __init__(self, run: str = "", epochs: int = 1, steps: str = "all"):
        self.run = run
        self.epochs_planned = epochs
        self.keep_steps = steps
        self.status = RunStatus.NEW  # from the events alone: new, running, paused, finished, stopped, failed
        self.reason = ""
        self.error = ""
        self.device = ""
        self.parameters = 0
        self.threads = 0
        self.precision = ""
        self.total_steps = 0
        self.steps_per_epoch = 1
        self.step = 0
        self.last: StepEvent | None = None
        self.series: dict[str, Series] = {k: Series() for k in SERIES}
        self.terms: dict[str, Series] = {}  # the family's own loss terms, by name, as the step events bring them
        self.train_epoch = Series()
        self.wall = Series()  # (step, wall-clock time) of the step events: x by time
        self.kl_dims = Columns()  # KL per latent dimension at each step event: the monitor's heat map
        self.alerts: deque = deque(maxlen=ALERTS_KEPT)  # the newest alerts its events raised (vaetui.runs.alerts)
        self.alert_count = 0
        self.breaks: list[int] = []  # steps where a resumed session or a roll-back began: smoothing restarts there
        self.epochs: list[EpochRecord] = []
        self.best_valid: float | None = None
        self.last_eval: EvalEvent | None = None
        self.snapshots: list[tuple[int, str]] = []
        self.checkpoints: dict[str, int] = {}
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.log_count = 0  # lines ever logged: a reader knows how many it has not shown
        self.updated = 0.0  # time of the newest event
        self.base_elapsed = 0.0
        self.events = 0

    # ------------------------------------------------------------------ folding
    def apply(self, event: Event) -> None:
        """Fold one event."""
        self.events += 1
        self.updated = max(self.updated, event.time)
        if event.step > self.step or isinstance(event, (StartedEvent, StepEvent)):
            self.step = event.step
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        if type(event) in (FinishedEvent, FailedEvent, WarningEvent):
            alert = alert_of(event, self.run)
            if alert is not None:
                self.alerts.append(alert)
                self.alert_count += 1

    def apply_json(self, data: dict[str, Any]) -> None:
        event = event_from_json(data)
        if event is not None:
            self.apply(event)

    def _started(self, e: StartedEvent) -> None:
        self.device, self.parameters, self.threads, self.precision = e.device, e.parameters, e.threads, e.precision
        self.total_steps, self.steps_per_epoch = e.total_steps, max(e.steps_per_epoch, 1)
        if e.epochs:  # a resume with more (or fewer) --epochs: what the monitor shows beside the steps
            self.epochs_planned = e.epochs
        self.status, self.reason, self.error = RunStatus.RUNNING, "", ""
        if self.last is not None:
            self.base_elapsed = self.last.elapsed
        self._log(f"{'resumed' if e.resumed else 'started'} at step {e.step} on {e.device}, {describe(e)}")
        for s in list(self.series.values()) + list(self.terms.values()) + [self.train_epoch, self.wall]:
            s.trim(e.step + 1)  # a resumed run repeats steps after its checkpoint
        self.kl_dims.trim(e.step + 1)
        if e.resumed:
            self._break(e.step)

    def _break(self, step: int) -> None:
        self.breaks = [b for b in self.breaks if b < step] + [step]

    def _stepped(self, e: StepEvent) -> None:
        if self.base_elapsed:
            e = _replace_elapsed(e, e.elapsed + self.base_elapsed)
        self.last = e
        self.total_steps = e.total_steps
        self.steps_per_epoch = max(e.steps_per_epoch, 1)
        if self.keep_steps == "all":
            self.series["loss"].add(e.step, e.loss)
            self.series["recon"].add(e.step, e.recon)
            self.series["kl"].add(e.step, e.kl)
            self.wall.add(e.step, e.time)
            if e.kl_dims:
                self.kl_dims.add(e.step, e.kl_dims)
            for name, value in (e.terms or {}).items():
                self.terms.setdefault(name, Series()).add(e.step, value)

    def _evaluated(self, e: EvalEvent) -> None:
        self.last_eval = e

    def _epoch(self, e: EpochEvent) -> None:
        if self.epochs and self.epochs[-1].epoch >= e.epoch:  # an epoch seen again (a resume): replace it
            self.epochs = [r for r in self.epochs if r.epoch < e.epoch]
        ev = self.last_eval if self.last_eval is not None and self.last_eval.epoch == e.epoch else None
        self.epochs.append(EpochRecord(e.epoch, e.step, e.train_loss, e.valid_loss, e.train_recon, e.train_kl, e.best,
                                       ev.recon if ev else math.nan, ev.kl if ev else math.nan))
        self.series["valid"].add(e.step, e.valid_loss)
        self.train_epoch.add(e.step, e.train_loss)
        if is_finite(e.valid_loss) and (self.best_valid is None or e.valid_loss < self.best_valid):
            self.best_valid = e.valid_loss
        self._log(f"epoch {e.epoch}: train {e.train_loss:.2f}, valid {e.valid_loss:.2f}{'  (best)' if e.best else ''}")

    def _images(self, e: ImagesEvent) -> None:
        if e.path:
            if self.snapshots and self.snapshots[-1][0] >= e.step:  # seen again (a resume): replace from there
                self.snapshots = [s for s in self.snapshots if s[0] < e.step]
            self.snapshots.append((e.step, e.path))

    def _checkpoint(self, e: CheckpointEvent) -> None:
        self.checkpoints[e.label] = e.step
        self._log(f"checkpoint {e.label} saved at step {e.step}")

    def _warning(self, e: WarningEvent) -> None:
        if e.cause == "rollback":
            self._break(e.step)
        self._log(f"warning: {e.message}")

    def _state(self, e: StateEvent) -> None:
        self.status = RunStatus.PAUSED if e.state == "paused" else RunStatus.RUNNING
        self._log(f"{e.state} at step {e.step}")

    def _finished(self, e: FinishedEvent) -> None:
        # "max_steps": --max-steps ended it before its epochs did (the engine says "completed" when both end at
        # once): stopped, resumable with a larger --max-steps, not finished
        self.status = RunStatus.FINISHED if e.reason == "completed" else RunStatus.STOPPED
        self.reason = e.reason
        self._log(f"{e.reason} at step {e.step}")

    def _failed(self, e: FailedEvent) -> None:
        self.status, self.error = RunStatus.FAILED, e.error
        self._log(f"failed: {e.error}")

    def _log(self, line: str) -> None:
        self.log.append(line)
        self.log_count += 1

    # ------------------------------------------------------------------ raw bytes
    def feed(self, data: bytes, deferred: deque | None = None) -> None:
        """Fold the complete lines of a chunk of metrics.jsonl.

        Long logs are nearly all step lines: they are found without a Python loop
        (logfile.scan_lines), the other events are folded in order, then the step points in
        bulk (steps="all"), and the newest step line is parsed whole for the numbers it shows.
        deferred: step lines are only collected there (a bounded deque: the newest ones), to
        be folded by feed_steps once the rest of a long log is in.

        The status is not touched by step points: every change of it has its own event.
        """
        starts, ends, is_step = scan_lines(data)
        for i in (~is_step).nonzero()[0].tolist():
            self._json(data[starts[i]:ends[i]])
        steps = is_step.nonzero()[0]
        if not len(steps):
            return
        n_steps = len(steps)
        if deferred is not None:  # a long log's first look keeps only the newest step lines
            steps = steps[-deferred.maxlen:]
        elif self.keep_steps != "all":
            steps = steps[-1:]
        lines = [data[s:e] for s, e in zip(starts[steps].tolist(), ends[steps].tolist())]
        if deferred is not None:
            deferred.extend(lines)
            return
        if self.keep_steps == "all":
            self.feed_steps(lines)
        else:  # a summary: the newest step event is all it reads of them
            self.events += n_steps - 1
            self._newest_step(lines[-1])

    def feed_steps(self, lines) -> None:
        """Fold step lines: their points in bulk, and the newest as the event the numbers panel shows."""
        lines = list(lines)
        xs, loss, recon, kl, wall = [], [], [], [], []
        terms: dict[str, tuple[list, list]] = {}
        with_dims = [i for i, line in enumerate(lines[:-1]) if b'"kl_dims"' in line]
        # KL per dimension, read whole (json): of at most HEAT_READ lines of a chunk, evenly spaced, with the newest
        keep = set(with_dims[::max(1, len(with_dims) // HEAT_READ)] + with_dims[-1:])
        for i, line in enumerate(lines[:-1]):
            point = _step_point(line)
            if point is not None:
                xs.append(point[0])
                loss.append(point[1])
                recon.append(point[2])
                kl.append(point[3])
                wall.append(point[4])
                if b'"terms"' in line:  # a family's own terms (a few runs): read whole
                    for name, value in _step_terms(line).items():
                        tx, ty = terms.setdefault(name, ([], []))
                        tx.append(point[0])
                        ty.append(value)
                if i in keep and (dims := _step_dims(line)):
                    self.kl_dims.add(point[0], dims)
        if xs:
            self.events += len(xs)
            self.step = max(self.step, int(xs[-1]))
            for key, ys in (("loss", loss), ("recon", recon), ("kl", kl)):
                self.series[key].extend(xs, ys)
            self.wall.extend(xs, wall)
            for name, (tx, ty) in terms.items():
                self.terms.setdefault(name, Series()).extend(tx, ty)
        if lines:
            self._newest_step(lines[-1])

    def _newest_step(self, line: bytes) -> None:
        status = self.status
        self._json(line)
        self.status = status

    def _json(self, line: bytes) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return  # a torn or foreign line
        if isinstance(data, dict):
            self.apply_json(data)

    # ------------------------------------------------------------------ reading
    @property
    def epochs_done(self) -> int:
        return self.epochs[-1].epoch if self.epochs else 0

    def eta_seconds(self) -> float | None:
        """Seconds left at the average speed so far, or None before there is one (or when not running)."""
        last = self.last
        if not last or last.images_per_s <= 0 or self.status != "running":
            return None
        per_step = last.elapsed / max(last.step, 1)
        return (self.total_steps - last.step) * per_step

    # ------------------------------------------------------------------ persistence (summaries)
    _STATE = ("run", "epochs_planned", "status", "reason", "error", "device", "parameters", "threads", "precision",
              "total_steps", "steps_per_epoch", "step", "best_valid", "updated", "base_elapsed", "events", "checkpoints",
              "alert_count")

    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot of a summary history (steps="none"), to continue its fold in a later process."""
        out = {k: getattr(self, k) for k in self._STATE}
        out["last"] = self.last.to_json() if self.last else None
        out["last_eval"] = self.last_eval.to_json() if self.last_eval else None
        out["epochs"] = [list(r.__dict__.values()) for r in self.epochs]
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "History":
        h = cls(state.get("run", ""), state.get("epochs_planned", 1), steps="none")
        for k in cls._STATE:
            if k in state:
                setattr(h, k, state[k])
        h.status = RunStatus(h.status)  # the cache holds the word
        h.last = event_from_json(state["last"]) if state.get("last") else None
        h.last_eval = event_from_json(state["last_eval"]) if state.get("last_eval") else None
        h.epochs = [EpochRecord(*r) for r in state.get("epochs", [])]
        return h

    def summary(self) -> dict[str, Any]:
        """The numbers of the runs list (JSON-able)."""
        return {"status": self.status, "step": self.step, "epochs_done": self.epochs_done,
                "best_valid": self.best_valid, "total_steps": self.total_steps, "updated": self.updated,
                "error": self.error, "reason": self.reason, "events": self.events,
                "epochs": [[r.epoch, r.step, r.valid_loss, r.valid_recon, r.valid_kl] for r in self.epochs]}


def events_in(data: bytes) -> tuple[Event, ...]:
    """The events of complete log lines, typed (a torn, foreign or unknown line is skipped)."""
    return tuple(e for e in (event_from_json(d) for d in parse_lines(data)) if e is not None)


def _replace_elapsed(e: StepEvent, elapsed: float) -> StepEvent:
    from dataclasses import replace

    return replace(e, elapsed=elapsed)


_HANDLERS = {
    StartedEvent: History._started, StepEvent: History._stepped, EvalEvent: History._evaluated,
    EpochEvent: History._epoch, ImagesEvent: History._images, CheckpointEvent: History._checkpoint,
    WarningEvent: History._warning, StateEvent: History._state, FinishedEvent: History._finished,
    FailedEvent: History._failed,
}


CHUNK = 8 << 20  # bytes folded at a time: memory stays bounded on any log


class RunHistory:
    """A History kept current from a run's metrics.jsonl by its appended bytes."""

    def __init__(self, path: Path, run: str = "", epochs: int = 1, steps: str = "all"):
        self.follower = LogFollower(path)
        self.run, self.epochs, self.steps = run, epochs, steps
        self.history = History(run, epochs, steps)

    def refresh(self, defer_steps: bool = False) -> tuple[bool, bool]:
        """Fold what was appended: (changed, reset). A rewritten log is folded again from the start.

        defer_steps: fold every other event first and only the newest RECENT step events (a
        long log's first look: seconds faster; the older points can be folded later).
        """
        from vaetui.runs.series import RECENT

        changed = reset_any = False
        deferred: deque | None = deque(maxlen=RECENT) if defer_steps else None
        while True:
            data, reset = self.follower.read_bytes(CHUNK)
            if reset:
                self.history = History(self.run, self.epochs, self.steps)
                changed = reset_any = True
                if deferred is not None:
                    deferred.clear()
            if not data:
                break
            self.history.feed(data, deferred)
            changed = True
            if len(data) < CHUNK - (64 << 10):
                break
        if deferred:
            self.history.feed_steps(deferred)
        return changed, reset_any
