"""What state a run is in: the one list of statuses, and the one rule that derives a run's status from its log and
whether a live process trains it (the runs list, `vaetui runs`, the monitor and studies all call it)."""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """A run's status; a str, so it compares with and prints as its word ("running") and is JSON as it."""

    NEW = "new"  # created, never started
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"  # trained all its epochs
    STOPPED = "stopped"  # stopped with a checkpoint (a person, a study's pruning, --max-steps): resumable
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its log says it trains, but no live process does: resumable
    DAMAGED = "damaged"  # its config.json cannot be read

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def ended(self) -> bool:
        """Whether its log says the run ended (finished, stopped or failed)."""
        return self in ENDED


ENDED = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED)


def status_of(logged: str, live: bool | None) -> RunStatus:
    """The status from what the log says and whether a live process trains the run (None: not known yet).

    A live trainer makes it running (paused, when its log says so) whatever the log said last (a resume before its
    first event); a run whose log says running or paused with no live trainer was interrupted: it resumes.
    """
    logged = RunStatus(logged)
    if live:
        return RunStatus.PAUSED if logged is RunStatus.PAUSED else RunStatus.RUNNING
    if live is False and logged in (RunStatus.RUNNING, RunStatus.PAUSED):
        return RunStatus.INTERRUPTED
    return logged
