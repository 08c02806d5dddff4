"""A run's history as TensorBoard event files, so a person can keep their habits (tensorboard --logdir DIR).

Written with TensorBoard's own writer (`torch.utils.tensorboard.SummaryWriter`, which needs the `tensorboard`
package: the optional extra `vaetui[tensorboard]`), one folder per run, each scalar at its step and with the wall
time it was logged, the training snapshots as images. The log is read line by line: memory stays flat on any run.
"""

from __future__ import annotations

import json
from pathlib import Path

from vaetui.errors import VaeError
from vaetui.runs.events import EpochEvent, EvalEvent, ImagesEvent, StepEvent, event_from_json

STEP_SCALARS = ("loss", "recon", "kl", "beta", "lr", "bits_per_dim", "images_per_s")


def writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's writer imports the tensorboard package
        raise VaeError("vaetui export tensorboard needs TensorBoard: pip install 'vaetui[tensorboard]' "
                       "(or pip install tensorboard)") from None
    return SummaryWriter


def export_run(run, out: Path) -> dict[str, int]:
    """Write one run's scalars and snapshots under out/<run name>; returns how many of each were written."""
    import numpy as np
    from PIL import Image

    SummaryWriter = writer_class()
    counts = {"scalars": 0, "images": 0}
    folder = Path(out) / run.name
    for old in folder.glob("events.out.tfevents.*"):  # an earlier export of this run: replaced, not doubled
        old.unlink()
    writer = SummaryWriter(log_dir=str(folder), flush_secs=3600)
    try:
        with open(run.metrics_path, "rb") as fh:
            for line in fh:
                try:
                    event = event_from_json(json.loads(line))
                except ValueError:
                    continue  # a torn last line
                if event is None:
                    continue
                scalars: dict[str, float] = {}
                if isinstance(event, StepEvent):
                    scalars = {f"train/{k}": getattr(event, k) for k in STEP_SCALARS}
                    scalars.update({f"train/{k}": v for k, v in (event.terms or {}).items()})
                    scalars.update({f"kl_dim/z{j:03d}": v for j, v in enumerate(event.kl_dims or [])})
                elif isinstance(event, EvalEvent):
                    scalars = {f"{event.split}/loss": event.loss, f"{event.split}/recon": event.recon,
                               f"{event.split}/kl": event.kl, f"{event.split}/bits_per_dim": event.bits_per_dim}
                    if event.active_units is not None:
                        scalars[f"{event.split}/active_units"] = event.active_units
                elif isinstance(event, EpochEvent):
                    scalars = {"epoch/train_loss": event.train_loss, "epoch/valid_loss": event.valid_loss}
                elif isinstance(event, ImagesEvent) and event.path:
                    try:
                        with Image.open(run.path / event.path) as im:
                            pixels = np.asarray(im.convert("RGB"))
                    except OSError:
                        continue  # a snapshot pruned or damaged: its scalars still go
                    writer.add_image("snapshots", pixels, event.step, dataformats="HWC", walltime=event.time)
                    counts["images"] += 1
                for tag, value in scalars.items():
                    writer.add_scalar(tag, value, event.step, walltime=event.time)
                counts["scalars"] += len(scalars)
    except OSError as exc:
        raise VaeError(f"cannot read {run.metrics_path}: {exc.strerror}") from None
    finally:
        writer.close()
    return counts
