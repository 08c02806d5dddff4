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
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetui.events import (
    CheckpointEvent, EpochEvent, EvalEvent, Event, FailedEvent, FinishedEvent, ImagesEvent, StartedEvent, StateEvent,
    StepEvent, WarningEvent, event_from_json,
)
from vaetui.series import Series

LOG_LINES = 500
SERIES = ("loss", "recon", "kl", "valid")
SERIES_LABELS = {"loss": "total loss", "recon": "reconstruction", "kl": "KL", "valid": "validation"}
ENDED = ("finished", "stopped", "failed")


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
        self.status = "new"  # new, running, paused, finished, stopped, failed (from events alone)
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
        self.train_epoch = Series()
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

    def apply_json(self, data: dict[str, Any]) -> None:
        event = event_from_json(data)
        if event is not None:
            self.apply(event)

    def _started(self, e: StartedEvent) -> None:
        self.device, self.parameters, self.threads, self.precision = e.device, e.parameters, e.threads, e.precision
        self.total_steps, self.steps_per_epoch = e.total_steps, max(e.steps_per_epoch, 1)
        self.status, self.reason, self.error = "running", "", ""
        if self.last is not None:
            self.base_elapsed = self.last.elapsed
        self._log(f"{'resumed' if e.resumed else 'started'} at step {e.step} on {e.device}, {e.threads} threads, "
                  f"{e.precision}")
        for s in list(self.series.values()) + [self.train_epoch]:
            s.trim(e.step + 1)  # a resumed run repeats steps after its checkpoint

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
        if self.status in ("new", "paused"):
            self.status = "running"

    def add_step_point(self, step: int, loss: float, recon: float, kl: float) -> None:
        """A step's losses without the rest of its event (the fast path for long logs)."""
        self.events += 1
        self.step = max(self.step, step)
        self.series["loss"].add(step, loss)
        self.series["recon"].add(step, recon)
        self.series["kl"].add(step, kl)

    def _evaluated(self, e: EvalEvent) -> None:
        self.last_eval = e

    def _epoch(self, e: EpochEvent) -> None:
        self.epochs = [r for r in self.epochs if r.epoch < e.epoch]
        ev = self.last_eval if self.last_eval is not None and self.last_eval.epoch == e.epoch else None
        self.epochs.append(EpochRecord(e.epoch, e.step, e.train_loss, e.valid_loss, e.train_recon, e.train_kl, e.best,
                                       ev.recon if ev else math.nan, ev.kl if ev else math.nan))
        self.series["valid"].add(e.step, e.valid_loss)
        self.train_epoch.add(e.step, e.train_loss)
        if _finite(e.valid_loss) and (self.best_valid is None or e.valid_loss < self.best_valid):
            self.best_valid = e.valid_loss
        self._log(f"epoch {e.epoch}: train {e.train_loss:.2f}, valid {e.valid_loss:.2f}{'  (best)' if e.best else ''}")

    def _images(self, e: ImagesEvent) -> None:
        if e.path:
            self.snapshots = [s for s in self.snapshots if s[0] < e.step] + [(e.step, e.path)]

    def _checkpoint(self, e: CheckpointEvent) -> None:
        self.checkpoints[e.label] = e.step
        self._log(f"checkpoint {e.label} saved at step {e.step}")

    def _warning(self, e: WarningEvent) -> None:
        self._log(f"warning: {e.message}")

    def _state(self, e: StateEvent) -> None:
        self.status = "paused" if e.state == "paused" else "running"
        self._log(f"{e.state} at step {e.step}")

    def _finished(self, e: FinishedEvent) -> None:
        self.status = "stopped" if e.reason == "stopped" else "finished"
        self.reason = e.reason
        self._log(f"{e.reason} at step {e.step}")

    def _failed(self, e: FailedEvent) -> None:
        self.status, self.error = "failed", e.error
        self._log(f"failed: {e.error}")

    def _log(self, line: str) -> None:
        self.log.append(line)
        self.log_count += 1

    # ------------------------------------------------------------------ raw bytes
    def feed(self, data: bytes, deferred: deque | None = None) -> None:
        """Fold the complete lines of a chunk of metrics.jsonl.

        deferred: step lines are only collected there (a bounded deque: the newest ones),
        to be folded by feed_steps once the rest of a long log is in.
        """
        lines = data.splitlines()
        last_step = None  # summaries: only the newest step line of a stretch is parsed
        pending = None  # series: the newest step line taken by the fast path, parsed whole at the end
        for i, line in enumerate(lines):
            kind = line_kind(line)
            if kind == "step":
                if deferred is not None:
                    deferred.append(line)
                elif self.keep_steps != "all":
                    last_step = i
                elif self._fast_step(line):
                    pending = line
                else:
                    self._json(line)
                    pending = None
                continue
            if last_step is not None and kind in ("started", "finished", "failed", "epoch"):
                self._json(lines[last_step])  # keep the order of what the summary reads
                last_step = None
            self._json(line)
        if last_step is not None:
            self._json(lines[last_step])
        if pending is not None:
            self._settle(pending)

    def feed_steps(self, lines) -> None:
        """Fold step lines collected by feed(deferred=...): their points, and the newest as the numbers' event.

        The status is not touched: every change of it has its own event, already folded.
        """
        lines = list(lines)
        for line in lines[:-1]:
            if not self._fast_step(line, always=True):
                self._json_step_point(line)
        if lines:
            status = self.status
            self._json(lines[-1])
            self.status = status

    def _json_step_point(self, line: bytes) -> None:
        try:
            d = json.loads(line)
            self.add_step_point(int(d["step"]), float(d["loss"]), float(d["recon"]), float(d["kl"]))
        except (ValueError, KeyError, TypeError):
            pass

    def _json(self, line: bytes) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return  # a torn or foreign line
        if isinstance(data, dict):
            self.apply_json(data)

    def _fast_step(self, line: bytes, always: bool = False) -> bool:
        """Series points from a compact step line, 7x cheaper than json.loads; the full event every 64th."""
        parts = line.split(b",", 10)
        if len(parts) < 11 or not (parts[7].startswith(b'"loss":') and parts[9].startswith(b'"kl":')):
            return False
        try:
            step = int(parts[1][7:])
            point = (float(parts[7][7:]), float(parts[8][8:]), float(parts[9][5:]))
        except ValueError:
            return False
        if not always and (self.last is None or step % 64 == 0 or step >= self.total_steps):
            return False  # json: the numbers panel wants the whole event now and then
        self.add_step_point(step, *point)
        return True

    def _settle(self, line: bytes) -> None:
        """The newest step line becomes `last` (the fast path took only its losses)."""
        keep, self.keep_steps = self.keep_steps, "none"
        self.events -= 1  # counted once already, by the fast path
        try:
            self._json(line)
        finally:
            self.keep_steps = keep

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
              "total_steps", "steps_per_epoch", "step", "best_valid", "updated", "base_elapsed", "events", "checkpoints")

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


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _replace_elapsed(e: StepEvent, elapsed: float) -> StepEvent:
    from dataclasses import replace

    return replace(e, elapsed=elapsed)


_HANDLERS = {
    StartedEvent: History._started, StepEvent: History._stepped, EvalEvent: History._evaluated,
    EpochEvent: History._epoch, ImagesEvent: History._images, CheckpointEvent: History._checkpoint,
    WarningEvent: History._warning, StateEvent: History._state, FinishedEvent: History._finished,
    FailedEvent: History._failed,
}


def line_kind(line: bytes) -> str | None:
    """The event type of a metrics line without parsing it: '{"type":"step",...' -> 'step'."""
    if line.startswith(b'{"type":"'):
        start = 9
    elif line.startswith(b'{"type": "'):
        start = 10
    else:
        return None
    end = line.find(b'"', start)
    return line[start:end].decode("ascii", "replace") if end > 0 else None


class LogFollower:
    """Incremental reader of a JSON-lines file that may be appended to, replaced or truncated."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.identity: tuple[int, int] | None = None
        self.offset = 0

    def read_bytes(self, limit: int | None = None) -> tuple[bytes, bool]:
        """(complete lines appended since the last read, reset); reset means they start at the file's beginning."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            reset = self.identity is not None
            self.identity, self.offset = None, 0
            return b"", reset
        with fh:
            st = os.fstat(fh.fileno())
            identity = (st.st_dev, st.st_ino)
            reset = self.identity is not None and (identity != self.identity or st.st_size < self.offset)
            if reset or self.identity is None:
                self.offset = 0
            self.identity = identity
            if st.st_size == self.offset:
                return b"", reset
            fh.seek(self.offset)
            data = fh.read(limit) if limit else fh.read()
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next read
        self.offset += end
        return data[:end], reset

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """(events appended since the last read, reset), parsed."""
        data, reset = self.read_bytes()
        return parse_lines(data), reset

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


def parse_lines(data: bytes) -> list[dict[str, Any]]:
    """JSON objects of complete lines; a torn or foreign line is skipped."""
    out = []
    for line in data.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


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
        from vaetui.series import RECENT

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
