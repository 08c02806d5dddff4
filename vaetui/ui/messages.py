"""Messages the training worker and the tailer send to the app (posted, never call_from_thread)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class TrainingEvents(Message):
    """A batch of engine events (at most a few per second), with the newest composed picture if any."""

    def __init__(self, session: Any, events: list, picture: Any = None) -> None:
        super().__init__()
        self.session = session
        self.events = events
        self.picture = picture


class TrainingEnded(Message):
    """The training worker's thread has finished (normally, stopped or failed)."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
