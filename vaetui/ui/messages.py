"""What the feed (vaetui.ui.feeds) and the trainer this window started post to the app: the same typed messages
for every run, whoever trains it."""

from __future__ import annotations

from dataclasses import dataclass

from PIL.Image import Image
from textual.message import Message

from vaetui.runs.alerts import Alert
from vaetui.runs.events import Event
from vaetui.runs.history import History
from vaetui.sysstats import Stats


@dataclass
class HistoryLoaded(Message):
    """The run's history so far, folded by the feed's worker: the receiver takes it over (and drops any
    earlier one). Sent first, and again when a log was rewritten (a resume) or a long log finished loading."""

    run: str
    history: History
    picture: Image | None = None


@dataclass
class RunEvents(Message):
    """Events that followed (a few per second at most), with the newest picture, already composed."""

    run: str
    events: tuple[Event, ...]
    picture: Image | None = None


@dataclass
class RunAlive(Message):
    """Whether a process trains the run right now, what it costs, and since when its log is quiet."""

    run: str
    alive: bool
    stats: Stats | None = None
    where: str = ""  # "here" (started by this window), "elsewhere" (another process on this host), or the host


@dataclass
class TrainerExited(Message):
    """The `vaetui train` process this window started has ended: its exit code and the last line it wrote."""

    run: str
    code: int
    error: str = ""


@dataclass
class RunAlert(Message):
    """Something about the run a person should hear of now that no event says: it went quiet."""

    run: str
    alert: Alert
