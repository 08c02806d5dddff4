"""Intents to a running Trainer: from other threads (a signal handler, a study worker) through `Control`,
and from other processes (the TUI, `vaetui monitor`, another host) through the run's control file.

The trainer reads them between steps; nothing else is shared with it. What happened
comes back as events (paused, running, finished), never as a status set from outside.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


@dataclass
class Control:
    """Flags another thread sets; the trainer reads them between steps."""

    stop_requested: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)
    checkpoint_requested: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Ask the trainer to save a checkpoint and finish."""
        self.stop_requested.set()
        self._wake.set()

    def pause(self) -> None:
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()
        self._wake.set()

    def toggle_pause(self) -> bool:
        """Pause if running, resume if paused; returns True when now paused."""
        if self.paused.is_set():
            self.resume()
            return False
        self.pause()
        return True

    def checkpoint(self) -> None:
        """Ask for a checkpoint at the next step boundary (also while paused)."""
        self.checkpoint_requested.set()
        self._wake.set()

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()


CONTROL_NAME = "control.jsonl"
WATCH_EVERY_S = 0.25
FROM_ENV = "VAETUI_INTENTS_FROM"  # set by a window that starts a trainer: the control file's size as it asked


class Intent(str, Enum):
    """What another thread or process may ask of a trainer; each is one line {"intent": word} in control.jsonl."""

    STOP = "stop"  # save a checkpoint and finish
    PAUSE = "pause"
    RESUME = "resume"
    CHECKPOINT = "checkpoint"  # save one at the next step boundary (also while paused)

    def __str__(self) -> str:
        return self.value

    def apply(self, control: "Control") -> None:
        """Do this intent on a trainer's Control."""
        getattr(control, self.value)()

    @classmethod
    def of(cls, line: Any) -> "Intent | None":
        """The intent a control line asks for; None for a damaged or unknown one (skipped alone)."""
        try:
            return cls(line.get("intent"))
        except (AttributeError, ValueError):  # not a dict; not one of the words (an unhashable one included)
            return None



def intents_from(path: Path) -> int:
    """Where in a control file the intents for this process begin: at the size it had when the window that
    started it asked for it, or else its size now. Intents are told apart by where they stand in the file,
    never by a time: an asker's clock on another host is not ours."""
    try:
        return max(0, int(os.environ[FROM_ENV]))
    except (KeyError, ValueError):
        try:
            return path.stat().st_size
        except OSError:
            return 0


class ControlFile:
    """A run's intents as lines appended to a file beside its log, so that any process can ask them of its trainer.

    The TUI that started the trainer, `vaetui monitor` in a second SSH session, or a host
    on the same shared filesystem appends what it asks (one line, one write: no reader
    sees half of it, and two askers never overwrite each other); the trainer's
    `ControlWatcher` applies each line once, between steps. What the run did comes back
    as events in its log.
    """

    def __init__(self, run_path: str | Path):
        self.path = Path(run_path) / CONTROL_NAME

    def ask(self, intent: Intent) -> None:
        """Append the intent for the run's trainer (whichever process, on whichever host, holds it)."""
        from vaetui.runs.logfile import EventLog

        EventLog(self.path).append({"intent": Intent(intent).value, "time": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def pause(self) -> None:
        self.ask(Intent.PAUSE)

    def resume(self) -> None:
        self.ask(Intent.RESUME)

    def stop(self) -> None:
        """Ask the trainer to save a checkpoint and finish."""
        self.ask(Intent.STOP)

    def checkpoint(self) -> None:
        """Ask for a checkpoint at the next step boundary (also while paused)."""
        self.ask(Intent.CHECKPOINT)


class ControlWatcher:
    """The trainer's side: a thread that applies the intents appended to a run's control file to its Control.

    Lines that stood in the file before `intents_from()` are a former trainer's (the stop it was
    asked for must not stop the resume) and are skipped; one written while this process was
    still starting is applied. A damaged line is skipped alone: the lines beside it still count.
    """

    def __init__(self, run_path: str | Path, control: Control, every: float = WATCH_EVERY_S):
        from vaetui.runs.logfile import LogFollower

        self.control, self.every = control, every
        self._follower = LogFollower(ControlFile(run_path).path)
        start = intents_from(self._follower.path)
        if start:
            self._follower.read_bytes(limit=start)  # takes the file's identity; these lines are not ours
            self._follower.offset = min(start, self._follower.size())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Apply the intents appended since the last look."""
        lines, _ = self._follower.read()  # a file made anew is read from its start: all of it is new
        for line in lines:
            intent = Intent.of(line)
            if intent is not None:
                intent.apply(self.control)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.poll()
            except (OSError, ValueError, TypeError):  # a damaged line is no intent; keep watching
                continue

    def start(self) -> ControlWatcher:
        self._thread = threading.Thread(target=self._loop, name="control watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
