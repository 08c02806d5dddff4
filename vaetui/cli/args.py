"""Shared argument machinery: a parser whose errors are one line, and types that check a value as it is parsed.

Every value a person types is checked before any work starts; a bad one is a single line
naming the flag, what is allowed and where to read more, and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

from vaetui.errors import VaeError

MAX_PICTURE_IMAGES = 1024  # images in one grid picture: more is a multi-GB PNG, not a picture
SEED_MAX = 2**31 - 1
SPLITS = ("train", "valid", "test")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: 'vaetui sample: error: argument --n: ...; see vaetui sample --help'."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be in [{low}, {'…' if high is None else high}], got {value}")
        return value

    return parse


def float_in(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high] when low_open)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value <= low):
            left = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"must be a finite number in {left}{low:g}, {high:g}], got {text}")
        return value

    return parse


def out_file(*suffixes: str) -> Callable[[str], Path]:
    """An argparse type: an output file name with one of these suffixes, in a folder that can hold it."""

    def parse(text: str) -> Path:
        path = Path(text).expanduser()
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text}: use a file name ending in {', '.join(suffixes)}")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder: give a file name")
        parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{parent} is not a folder")
        return path

    return parse


def existing_dir(text: str) -> Path:
    """An argparse type: a folder that exists."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {text}: check the path (runs are made by vaetui train)")
    return path


def add_runs_dir(p: argparse.ArgumentParser, must_exist: bool = True) -> None:
    p.add_argument("--runs-dir", type=existing_dir if must_exist else Path, default=None, metavar="DIR",
                   help="run store (default: ./checkpoints)")


def add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, metavar="WHICH",
                   help="best, latest, epoch-N or a path (default: best, falling back to the newest good one; "
                        "a named one must exist)")


def add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run name (see vaetui runs), e.g. demo")
    add_runs_dir(p)


def progress_printer():
    """A callback (done, total, what) that draws a rich progress bar on stderr; None without a tty."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    state: dict = {}

    def update(done: int, total: int, what: str) -> None:
        if "bar" not in state:
            state["bar"] = Progress(transient=True)
            state["bar"].start()
            state["task"] = state["bar"].add_task(what, total=total)
        state["bar"].update(state["task"], completed=done, total=total, description=what)
        if done >= total:
            state.pop("bar").stop()

    return update


def warn(message: str) -> None:
    print(f"vaetui: warning: {message}", file=sys.stderr)


def need(condition: bool, message: str) -> None:
    """Raise the one-line user error `message` unless condition holds."""
    if not condition:
        raise VaeError(message)
