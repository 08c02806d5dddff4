"""What a training run says while it runs: typed events, each one JSON line in metrics.jsonl.

The engine yields them; the run store appends them; vaetui.runs.history folds them; the TUI
and the CLI render them. Events are immutable. An ImagesEvent carries its tensors beside
its JSON fields (for listeners in this process); the log stores only the PNG's path.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base: every event knows its step and when it happened."""

    kind: ClassVar[str] = "event"
    step: int
    time: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with a 'type' key; fields that are not JSON-able, and optional ones not set, are left out."""
        out: dict[str, Any] = {"type": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("transient") or (value is None and f.default is None):
                continue
            out[f.name] = value
        return out


@dataclass(frozen=True)
class StartedEvent(Event):
    """Training (re)started: run name, device, parameter count, where it resumes from."""

    kind: ClassVar[str] = "started"
    run: str
    device: str
    parameters: int
    total_steps: int
    steps_per_epoch: int
    resumed: bool = False
    threads: int = 1
    precision: str = "fp32"  # as resolved: fp32, bf16 or fp16
    compiled: bool = False
    world_size: int = 1  # processes training it (torchrun)
    epochs: int | None = None  # epochs planned as it (re)starts: a resume may give more (older logs: absent)


@dataclass(frozen=True)
class StepEvent(Event):
    """Losses per image averaged since the last step event, and throughput: images_per_s over the training steps
    alone (pictures, validation and checkpoints left out); elapsed counts everything since the start."""

    kind: ClassVar[str] = "step"
    epoch: int
    epoch_step: int
    steps_per_epoch: int
    total_steps: int
    loss: float
    recon: float
    kl: float
    beta: float
    lr: float
    nats_per_dim: float
    bits_per_dim: float
    images_per_s: float
    elapsed: float
    nonfinite: int = 0
    gpu_mem_mb: float | None = None  # on CUDA: memory the trainer holds on its GPU (no monitor can read it from outside)
    terms: dict[str, float] | None = None  # the family's own loss terms per image (IWAE's bound, β-TCVAE's MI, TC, …)
    kl_dims: list[float] | None = None  # KL per image of each latent dimension to N(0, 1), 4 significant digits


@dataclass(frozen=True)
class EvalEvent(Event):
    """Validation losses per image on the fixed validation subset; loss = recon + β·KL at the run's final β."""

    kind: ClassVar[str] = "eval"
    epoch: int
    split: str
    loss: float
    recon: float
    kl: float
    nats_per_dim: float
    bits_per_dim: float
    count: int
    beta: float = math.nan
    active_units: int | None = None  # units with Var over images of μ_j > 0.01


@dataclass(frozen=True)
class EpochEvent(Event):
    """End of an epoch: mean train loss over it and the validation objective after it (at the run's final β)."""

    kind: ClassVar[str] = "epoch"
    epoch: int
    train_loss: float
    valid_loss: float
    train_recon: float = 0.0
    train_kl: float = 0.0
    best: bool = False


@dataclass(frozen=True)
class CheckpointEvent(Event):
    """A checkpoint file was written."""

    kind: ClassVar[str] = "checkpoint"
    path: str
    label: str


@dataclass(frozen=True)
class ImagesEvent(Event):
    """Reconstructions of the fixed validation batch and samples from fixed z."""

    kind: ClassVar[str] = "images"
    path: str = ""
    originals: Any = field(default=None, metadata={"transient": True}, repr=False)
    reconstructions: Any = field(default=None, metadata={"transient": True}, repr=False)
    samples: Any = field(default=None, metadata={"transient": True}, repr=False)


@dataclass(frozen=True)
class WarningEvent(Event):
    """Something the user should know; training goes on."""

    kind: ClassVar[str] = "warning"
    message: str
    cause: str | None = None  # what code decides on (never the text): "rollback", "collapse", "nonfinite", ...


@dataclass(frozen=True)
class StateEvent(Event):
    """Paused or resumed by the controller."""

    kind: ClassVar[str] = "state"
    state: str


@dataclass(frozen=True)
class FinishedEvent(Event):
    """Training ended normally: 'completed', 'max_steps' or 'stopped'."""

    kind: ClassVar[str] = "finished"
    epoch: int
    reason: str


@dataclass(frozen=True)
class FailedEvent(Event):
    """Training ended with an error."""

    kind: ClassVar[str] = "failed"
    error: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (StartedEvent, StepEvent, EvalEvent, EpochEvent, CheckpointEvent, ImagesEvent,
                WarningEvent, StateEvent, FinishedEvent, FailedEvent)
}


def event_from_json(data: dict[str, Any]) -> Event | None:
    """Rebuild an event from its JSON line; None for unknown types (written by a newer vaetui)."""
    cls = EVENT_TYPES.get(data.get("type", ""))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("transient")}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


def describe(event: "StartedEvent") -> str:
    """'2 threads, bf16 autocast, compiled': how the run computes."""
    numbers = "fp32" if event.precision == "fp32" else f"{event.precision} autocast"
    return f"{event.threads} threads, {numbers}" + (", compiled" if event.compiled else "")
