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
from pathlib import Path


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
SINCE_ENV = "VAETUI_INTENTS_SINCE"  # set by a window that starts a trainer: the moment it asked for one


def asked_since() -> float:
    """From when on intents in a control file are for this process: the moment the window that started it
    spawned it, or else the moment it began to run vaetui (to the microsecond; /proc's start time is only
    good to a second, and a stop written in that second for the trainer before would stop this one)."""
    import vaetui

    try:
        return float(os.environ[SINCE_ENV])
    except (KeyError, ValueError):
        return vaetui.STARTED_AT


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

    def _ask(self, intent: str) -> None:
        from vaetui.logfile import EventLog

        EventLog(self.path).append({"intent": intent, "time": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})

    def pause(self) -> None:
        self._ask("pause")

    def resume(self) -> None:
        self._ask("resume")

    def stop(self) -> None:
        """Ask the trainer to save a checkpoint and finish."""
        self._ask("stop")

    def checkpoint(self) -> None:
        """Ask for a checkpoint at the next step boundary (also while paused)."""
        self._ask("checkpoint")


class ControlWatcher:
    """The trainer's side: a thread that applies the intents appended to a run's control file to its Control.

    Lines written before `asked_since()` are a former trainer's (the stop it was asked
    for must not stop the resume) and are skipped; one written while this process was
    still starting is applied.
    """

    def __init__(self, run_path: str | Path, control: Control, every: float = WATCH_EVERY_S):
        from vaetui.logfile import LogFollower

        self.control, self.every = control, every
        self._follower = LogFollower(ControlFile(run_path).path)
        self._since = asked_since()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Apply the intents appended since the last look."""
        lines, _ = self._follower.read()  # a replaced file is read from its start: its lines are judged by time
        for line in lines:
            if not isinstance(line, dict) or float(line.get("time", 0) or 0) < self._since:
                continue
            intent = line.get("intent")
            if intent == "stop":
                self.control.stop()
            elif intent == "pause":
                self.control.pause()
            elif intent == "resume":
                self.control.resume()
            elif intent == "checkpoint":
                self.control.checkpoint()

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
