"""Test helpers: tiny configs and a way to train them."""

from __future__ import annotations

from vaetui.config.presets import preset
from vaetui.config.resolve import with_overrides
from vaetui.train.engine import Control, Trainer
from vaetui.runs.store import RunStore


def tiny_config(**overrides):
    base = {"dataset_size": 128, "batch_size": 16, "epochs": 2, "image_every": 4, "checkpoint_every": 3,
            "log_every": 1, "valid_size": 32}
    base.update(overrides)
    return with_overrides(preset("tiny"), base).validate()


def train(store: RunStore, name: str, config=None, resume: bool = False, control: Control | None = None):
    """Train (or resume) a run to the end; returns (run, events)."""
    if resume:
        run = store.open(name)
        config = config or run.config()
        if config != run.config():
            run.write_config(config)
    else:
        run = store.create(config or tiny_config(), name)
    events = list(Trainer(config or run.config(), run, resume=resume).run(control))
    return run, events


def kinds(events):
    return [e.kind for e in events]
