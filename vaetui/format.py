"""Numbers for people: which values are real numbers, and durations written short (1h02m, 3m05s, 42s)."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> float | None:
    """value as a float when it is a finite real number (not a bool, None, NaN, ±inf, text), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def is_finite(value: Any) -> bool:
    """True for a finite real number: what a table, a chart or a study can show or report."""
    return finite(value) is not None


def duration(seconds: float | None) -> str:
    """1h02m, 3m05s, 42s; '--' for a duration not known (None, NaN, negative, infinite)."""
    if finite(seconds) is None or seconds < 0:
        return "--"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
