"""Where a monitor's events come from: a training worker in this process, or a run's metrics.jsonl."""

from __future__ import annotations

import gc
import time
from PIL import Image as PILImage

from vaetui.config import RunConfig
from vaetui.events import Event, FailedEvent, FinishedEvent, ImagesEvent, StateEvent, event_from_json
from vaetui.runs import Run
from vaetui.ui.state import MonitorState

POST_EVERY_S = 0.25  # the UI hears from the worker at most ~4 times a second


class Session:
    """What the monitor watches: a state built from events, and (when live) the control."""

    live = False

    def __init__(self, run: Run, config: RunConfig):
        self.run = run
        self.config = config
        self.state = MonitorState(run=run.name, run_dir=run.path, epochs=config.train.epochs)
        self.picture: PILImage.Image | None = None

    def snapshot_picture(self, index: int) -> PILImage.Image | None:
        """The stored snapshot image number index (step order)."""
        snaps = self.state.snapshots
        if not snaps:
            return None
        _, rel = snaps[max(0, min(index, len(snaps) - 1))]
        try:
            with PILImage.open(self.run.path / rel) as im:
                return im.convert("RGB")
        except OSError:
            return None


class TrainingSession(Session):
    """A run trained by a worker thread of this app; control pauses, resumes and stops it."""

    live = True

    def __init__(self, run: Run, config: RunConfig, resume: bool, threads: int | None):
        super().__init__(run, config)
        from vaetui.engine import Control  # torch is imported here, after the first frame

        self.resume = resume
        self.threads = threads
        self.control = Control()
        self.finished = False
        if resume:  # the history so far; the trainer's own events follow
            for data in run.read_events()[0]:
                event = event_from_json(data)
                if event is not None:
                    self.state.apply(event)
            self.state.status = "waiting"

    def work(self, post) -> None:
        """The worker thread's body: train and post batches of events (never blocks on the UI)."""
        import torch

        from vaetui.engine import Trainer
        from vaetui.imaging import stack_rows

        if self.threads:
            torch.set_num_threads(self.threads)  # per thread: this is the training thread
        pending: list[Event] = []
        picture = None
        last_post = 0.0
        frozen = False
        try:
            for event in Trainer(self.config, self.run, resume=self.resume).run(self.control):
                if not frozen:
                    # torch and the trainer are loaded now: move their objects out of the GC's reach, or every
                    # full collection walks them all and stalls the UI thread for ~200 ms.
                    gc.freeze()
                    frozen = True
                if isinstance(event, ImagesEvent) and event.reconstructions is not None:
                    picture = stack_rows([event.originals, event.reconstructions, event.samples])  # composed here, off the UI thread
                    event.originals = event.reconstructions = event.samples = None
                pending.append(event)
                urgent = isinstance(event, (StateEvent, FinishedEvent, FailedEvent))
                now = time.monotonic()
                if urgent or now - last_post >= POST_EVERY_S:
                    post(pending, picture)
                    pending, picture, last_post = [], None, now
        finally:
            if pending or picture is not None:
                post(pending, picture)
            self.finished = True


class TailSession(Session):
    """A run trained by another process (vaetui train, torchrun): tails its metrics.jsonl."""

    def __init__(self, run: Run, config: RunConfig):
        super().__init__(run, config)
        from vaetui.history import LogFollower

        self.follower = LogFollower(run.metrics_path)
        self.last_snapshot: str | None = None

    def poll(self) -> bool:
        """Read new events; True when something changed. A rewritten log (a resume) is read again from the start."""
        lines, reset = self.follower.read()
        changed = reset
        if reset:
            self.state = MonitorState(run=self.run.name, run_dir=self.run.path, epochs=self.config.train.epochs)
            self.last_snapshot = None
        for data in lines:
            event = event_from_json(data)
            if event is None:
                continue
            self.state.apply(event)
            changed = True
        if changed:
            # The file's own clock: "quiet" means no new line for a while.
            self.state.updated = time.time()
        if self.state.snapshots and self.state.snapshots[-1][1] != self.last_snapshot:
            self.last_snapshot = self.state.snapshots[-1][1]
            self.picture = self.snapshot_picture(len(self.state.snapshots) - 1)
            changed = True
        holder = self.run.lock_holder()
        if self.state.status == "running" and not (holder and holder.get("alive")):
            self.state.status = "interrupted"
            changed = True
        return changed
