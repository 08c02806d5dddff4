"""The project's own exceptions: errors a user can cause, each with a message that says what to do."""

from __future__ import annotations


class VaeError(Exception):
    """Base of every error a user can cause; the CLI prints it in one line and exits non-zero."""


class ConfigError(VaeError, ValueError):
    """An impossible or unknown setting; the message names the field and what is allowed."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


class DataError(VaeError):
    """A dataset that cannot be read: missing folder or file, empty folder, bad partition file."""


class CheckpointError(VaeError):
    """A checkpoint that is missing, truncated, corrupt or does not match the run."""


class NoCheckpointYet(CheckpointError):
    """A run that has not saved a checkpoint yet (a resume then starts from step 0: not a failure)."""


class FitError(VaeError):
    """A stored fit (a sampler's mixture) that is damaged or foreign: it is fitted again."""


class RunError(VaeError):
    """A run that does not exist, is locked by a live trainer, or has an invalid name."""


class InvalidName(RunError):
    """A run or study name that is not a plain folder name; `reason` is what is wrong, without the name."""

    def __init__(self, name: object, what: str, reason: str):
        self.name, self.what, self.reason = name, what, reason
        super().__init__(f"invalid {what} name {name!r}: {reason}")
