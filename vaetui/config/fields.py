"""What a setting is: its flat name, type, range or choices, help, and whether a resume may change it.

The settings themselves are declared once, as the fields of vaetui.config.settings's dataclasses
(with `setting(...)`); this module holds the machinery every consumer derives from them
(flags, form fields, TOML keys, validation, the resume rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from vaetui.errors import ConfigError

MIN_SIDE, MAX_SIDE = 16, 1024


def setting_field(default: Any, help: str, *, name: str | None = None, kind: Any = None, choices: tuple = (),
                  low: float | None = None, high: float | None = None, low_open: bool = False, resume: bool = False,
                  form: str | None = None, metavar: str | None = None, beyond: Callable[[Any], bool] | None = None,
                  beyond_text: str = "") -> Any:
    """A dataclass field that is also a user-facing setting (see Setting)."""
    meta = {"name": name, "kind": kind if kind is not None else type(default), "help": help, "choices": choices,
            "low": low, "high": high, "low_open": low_open, "resume": resume, "form": form, "metavar": metavar,
            "beyond": beyond, "beyond_text": beyond_text}
    return field(default=default, metadata={"setting": meta})


@dataclass(frozen=True)
class Setting:
    """One user-facing setting: its flat name is the CLI flag (--name-with-dashes), TOML key and override key."""

    name: str
    section: str
    field: str
    kind: Any  # int, float, str, bool, or "size"
    help: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    resume: bool = False  # a resumed run may change it
    form: str | None = None  # label in the new-run form
    metavar: str | None = None
    optional: bool = False  # None means "not set"
    beyond: Callable[[Any], bool] | None = None  # values it takes besides its choices (a user's model: file.py:Class)
    beyond_text: str = ""  # what those look like, for messages

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        return f"{self.section}.{self.field}"

    def parse(self, text: str) -> Any:
        """A value typed by a person (form, flag) -> this setting's type; ConfigError names what is wanted."""
        text = text.strip()
        if text == "" and self.optional:
            return None
        try:
            if self.kind == "size":
                return parse_size(text)
            if self.kind is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return self.kind(text)
        except ConfigError:
            raise
        except ValueError:
            what = {int: "an integer", float: "a number", bool: "true or false"}.get(self.kind, "a value")
            raise ConfigError(self.key, f"must be {what}, got {text!r}") from None

    def check(self, value: Any) -> None:
        """Raise ConfigError naming this setting when value is out of its type, range or choices."""
        if value is None and self.optional:
            return
        if self.choices:
            if self.beyond is not None and self.beyond(value):
                return
            _check_choice(self.key, value, self.choices, self.beyond_text)
        elif self.kind is int:
            _check_int(self.key, value, int(self.low if self.low is not None else -(2**63)),
                       int(self.high if self.high is not None else 2**63))
        elif self.kind is float:
            _check_float(self.key, value, self.low if self.low is not None else -math.inf,
                         self.high if self.high is not None else math.inf, self.low_open)
        elif self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(self.key, f"must be true or false, got {value!r}")
        elif self.kind == "size":
            if not (isinstance(value, tuple) and len(value) == 2):
                raise ConfigError(self.key, f"must be HxW, got {value!r}")
            for side in value:
                _check_int(self.key, side, MIN_SIDE, MAX_SIDE)
        elif self.kind is str and not isinstance(value, str):
            raise ConfigError(self.key, f"must be text, got {value!r}")

    def describe(self) -> str:
        """The allowed values, for help texts: 'one of a, b' or 'in [lo, hi]'."""
        if self.choices:
            return "one of " + ", ".join(self.choices) + (f", or {self.beyond_text}" if self.beyond_text else "")
        if self.low is None:
            return ""
        if self.high is None or (self.kind is int and self.high >= 10**6):
            return f"{'>' if self.low_open else '≥'} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"


def parse_size(value: Any) -> tuple[int, int]:
    """'64', '218x178', [218, 178] or 64 -> (H, W)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        h, w = value
    elif isinstance(value, int) and not isinstance(value, bool):
        h = w = value
    elif isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ConfigError("data.size", f"must be HxW like 218x178 or 64, got {value!r}")
        h, w = int(parts[0]), int(parts[1])
    else:
        raise ConfigError("data.size", f"must be HxW like 218x178 or 64, got {value!r}")
    if not (isinstance(h, int) and isinstance(w, int)) or isinstance(h, bool) or isinstance(w, bool):
        raise ConfigError("data.size", f"must be two integers, got {value!r}")
    return (h, w)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ConfigError(name, f"must be in [{low}, {high}], got {value}")


def _check_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, f"must be a number in [{low:g}, {high:g}], got {value!r}")
    if not low <= value <= high or (low_open and value <= low):
        raise ConfigError(name, f"must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value:g}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...], beyond: str = "") -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}{f', or {beyond}' if beyond else ''}; got {value!r}")


