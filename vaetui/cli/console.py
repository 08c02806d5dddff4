"""Headless rendering of training events: a rich progress bar and one line per epoch, or JSON lines."""

from __future__ import annotations

import json
import sys
from typing import Iterable, TextIO

from vaetui.format import duration
from vaetui.runs.events import describe
from vaetui.runs.events import (
    EpochEvent, Event, FinishedEvent, StartedEvent, StepEvent, WarningEvent,
)




def epoch_line(e: EpochEvent, total_epochs: int) -> str:
    """The seed's per-epoch print, per image."""
    return (f"epoch {e.epoch}/{total_epochs}  train loss {e.train_loss:.2f}  valid loss {e.valid_loss:.2f}"
            f"  (recon {e.train_recon:.2f}, KL {e.train_kl:.2f}){'  best' if e.best else ''}")


def print_json_events(events: Iterable[Event], out: TextIO | None = None) -> Event | None:
    """Print every event as one JSON line (to the current sys.stdout by default); returns the last event."""
    out = out or sys.stdout
    last = None
    for event in events:
        out.write(json.dumps(event.to_json()) + "\n")
        out.flush()
        last = event
    return last


def print_progress(events: Iterable[Event], total_epochs: int, out: TextIO | None = None) -> Event | None:
    """A rich progress bar (epoch, step, loss, recon, KL, images/s, ETA) and a line per epoch."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    console = Console(file=out, highlight=False, soft_wrap=True)
    progress = Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), TaskProgressColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}  recon {task.fields[recon]}  KL {task.fields[kl]}"),
        TextColumn("{task.fields[speed]} img/s  ETA {task.fields[eta]}"),
        console=console, transient=True, auto_refresh=console.is_terminal, refresh_per_second=4,
    )
    task = None
    last = None
    run, start_step = "RUN", 0
    with progress:
        for event in events:
            last = event
            if isinstance(event, StartedEvent):
                what = "resumed" if event.resumed else "started"
                run, start_step = event.run, event.step
                console.print(f"{what} run {event.run} at step {event.step}/{event.total_steps} on {event.device} "
                              f"({event.parameters:,} parameters, {describe(event)})")
                task = progress.add_task("train", total=event.total_steps, completed=event.step,
                                         epoch="-", loss="-", recon="-", kl="-", speed="-", eta="-")
            elif isinstance(event, StepEvent) and task is not None:
                done = event.step - start_step
                remaining = (event.total_steps - event.step) * event.elapsed / done if done > 0 else float("nan")
                progress.update(task, completed=event.step, epoch=f"{event.epoch}/{total_epochs}",
                                loss=f"{event.loss:.1f}", recon=f"{event.recon:.1f}", kl=f"{event.kl:.1f}",
                                speed=f"{event.images_per_s:.0f}", eta=duration(remaining))
                if not console.is_terminal and event.step % max(1, event.steps_per_epoch // 4 or 1) == 0:
                    console.print(f"step {event.step}/{event.total_steps}  loss {event.loss:.2f}  "
                                  f"{event.images_per_s:.0f} img/s")
            elif isinstance(event, EpochEvent):
                console.print(epoch_line(event, total_epochs))
            elif isinstance(event, WarningEvent):
                console.print(f"[yellow]warning:[/] {event.message}")
            elif isinstance(event, FinishedEvent):
                hint = f"; resume with: vaetui train --resume {run}" if event.reason != "completed" else ""
                console.print(f"{event.reason} at step {event.step} (epoch {event.epoch}){hint}")
            # A FailedEvent is reported by the caller, once, on stderr.
    return last
