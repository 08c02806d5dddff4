"""What the monitor shows, built from events: one model for a live worker and a tailed metrics.jsonl."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from vaetui.events import (
    CheckpointEvent, EpochEvent, EvalEvent, Event, FailedEvent, FinishedEvent, ImagesEvent, StartedEvent, StateEvent,
    StepEvent, WarningEvent,
)

MAX_POINTS = 2000  # per series; older points are thinned, never the newest
QUIET_AFTER_S = 60.0  # a run trained elsewhere that wrote nothing for this long is shown as quiet


@dataclass
class Series:
    """x/y points of one curve."""

    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)

    def add(self, x: float, y: float) -> None:
        self.xs.append(x)
        self.ys.append(y)
        if len(self.xs) > MAX_POINTS:  # keep every other old point: bounded memory, whole history
            half = len(self.xs) // 2
            self.xs = self.xs[:half:2] + self.xs[half:]
            self.ys = self.ys[:half:2] + self.ys[half:]

    def __len__(self) -> int:
        return len(self.xs)


SERIES = ("loss", "recon", "kl", "valid")
SERIES_LABELS = {"loss": "total loss", "recon": "reconstruction", "kl": "KL", "valid": "validation"}


@dataclass
class MonitorState:
    """Everything the monitor screen draws; updated by `apply(event)`."""

    run: str = ""
    run_dir: Path | None = None
    status: str = "waiting"  # waiting, running, paused, stopping, finished, stopped, failed
    device: str = ""
    parameters: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 1
    epochs: int = 1
    last: StepEvent | None = None
    series: dict[str, Series] = field(default_factory=lambda: {k: Series() for k in SERIES})
    train_epoch: Series = field(default_factory=Series)  # mean train loss per epoch (x = step)
    last_eval: EvalEvent | None = None
    snapshots: list[tuple[int, str]] = field(default_factory=list)  # (step, path)
    log: list[str] = field(default_factory=list)
    error: str = ""
    updated: float = field(default_factory=time.time)
    base_elapsed: float = 0.0
    live_images: ImagesEvent | None = None

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        self.updated = time.time()
        if isinstance(event, StartedEvent):
            self.run, self.device, self.parameters = event.run, event.device, event.parameters
            self.total_steps, self.steps_per_epoch = event.total_steps, max(event.steps_per_epoch, 1)
            self.status = "running"
            what = "resumed" if event.resumed else "started"
            self._log(f"{what} at step {event.step} on {event.device}, {event.threads} threads, {event.precision}")
            if self.last is not None:
                self.base_elapsed = self.last.elapsed
        elif isinstance(event, StepEvent):
            if self.last is not None and event.step <= self.last.step:
                self._trim(event.step)
            event.elapsed += self.base_elapsed
            self.last = event
            self.total_steps = event.total_steps
            for key in ("loss", "recon", "kl"):
                self.series[key].add(event.step, getattr(event, key))
            if self.status in ("waiting", "paused"):
                self.status = "running"
        elif isinstance(event, EvalEvent):
            self.last_eval = event
        elif isinstance(event, EpochEvent):
            self.series["valid"].add(event.step, event.valid_loss)
            self.train_epoch.add(event.step, event.train_loss)
            best = "  (best)" if event.best else ""
            self._log(f"epoch {event.epoch}: train {event.train_loss:.2f}, valid {event.valid_loss:.2f}{best}")
        elif isinstance(event, ImagesEvent):
            if event.path:
                self.snapshots = [s for s in self.snapshots if s[0] != event.step] + [(event.step, event.path)]
            if event.reconstructions is not None:
                self.live_images = event
        elif isinstance(event, CheckpointEvent):
            self._log(f"checkpoint {event.label} saved at step {event.step}")
        elif isinstance(event, WarningEvent):
            self._log(f"warning: {event.message}")
        elif isinstance(event, StateEvent):
            self.status = "paused" if event.state == "paused" else "running"
            self._log(f"{event.state} at step {event.step}")
        elif isinstance(event, FinishedEvent):
            self.status = "stopped" if event.reason == "stopped" else "finished"
            self._log(f"{event.reason} at step {event.step}")
        elif isinstance(event, FailedEvent):
            self.status, self.error = "failed", event.error
            self._log(f"failed: {event.error}")

    def _trim(self, step: int) -> None:
        """A resumed run repeats steps after its checkpoint: drop the points past it."""
        for s in list(self.series.values()) + [self.train_epoch]:
            keep = [i for i, x in enumerate(s.xs) if x < step]
            s.xs, s.ys = [s.xs[i] for i in keep], [s.ys[i] for i in keep]

    def _log(self, line: str) -> None:
        self.log.append(line)
        del self.log[:-500]

    @property
    def step(self) -> int:
        return self.last.step if self.last else 0

    def eta_seconds(self) -> float | None:
        """Seconds left at the recent speed, or None before there is a speed."""
        if not self.last or self.last.images_per_s <= 0 or self.status not in ("running",):
            return None
        steps_left = self.total_steps - self.last.step
        per_step = self.last.elapsed / max(self.last.step, 1)
        return steps_left * per_step

    def quiet_for(self, now: float | None = None) -> float:
        """Seconds since the last event (for runs tailed from another process)."""
        return (now or time.time()) - self.updated
