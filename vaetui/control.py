"""Intents from other threads (the UI, a signal handler, a study worker) to a running Trainer.

The trainer reads them between steps; nothing else is shared with it. What happened
comes back as events (paused, running, finished), never as a status set from outside.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


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
