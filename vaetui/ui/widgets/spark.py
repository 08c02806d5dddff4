"""A sparkline that costs a few hundred bytes to redraw, and nothing when what it would draw is the same.

Textual's Sparkline colours every cell with a gradient: four of them redrawn each second
were most of what the monitor sent over SSH. This one draws each row in one colour
(a row is one escape code and its characters), keeps its y-range sticky (it widens at
once, narrows only when the data moved well inside it, so the old bars do not all move
on every point), and redraws only when its text changes.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

BARS = " ▁▂▃▄▅▆▇█"


def columns(values: list[float], width: int) -> list[float]:
    """values resampled to width columns (each the mean of its stretch), newest on the right."""
    if not values or width <= 0:
        return []
    if len(values) <= width:
        return list(values)
    out = []
    for k in range(width):
        a, b = k * len(values) // width, (k + 1) * len(values) // width
        chunk = values[a:max(b, a + 1)]
        out.append(sum(chunk) / len(chunk))
    return out


def bar_rows(cols: list[float], low: float, high: float, height: int) -> list[str]:
    """The sparkline as `height` lines of block characters, top line first."""
    span = high - low if high > low else 1.0
    levels = [max(0, min(8 * height, round((v - low) / span * (8 * height - 1)) + 1)) for v in cols]
    lines = []
    for row in range(height - 1, -1, -1):  # from the top
        base = row * 8
        lines.append("".join(BARS[max(0, min(8, lv - base))] for lv in levels))
    return lines


class Spark(Widget):
    """A multi-row sparkline of the newest values, in one colour."""

    DEFAULT_CSS = "Spark { height: 1fr; }"

    def __init__(self, colour: str = "dodger_blue2", **kwargs):
        super().__init__(**kwargs)
        self.style = Style(color=colour)
        self._values: list[float] = []
        self._range: tuple[float, float] | None = None
        self._lines: list[str] = []

    def set(self, values: list[float]) -> None:
        self._values = [v for v in values if v == v and abs(v) != float("inf")]
        lines = self._layout()
        if lines != self._lines:
            self._lines = lines
            self.refresh()

    def _layout(self) -> list[str]:
        width, height = self.size.width, max(self.size.height, 1)
        cols = columns(self._values, width)
        if not cols:
            return []
        lo, hi = min(cols), max(cols)
        if self._range is None:
            self._range = (lo, hi)
        else:
            r_lo, r_hi = self._range
            span = max(r_hi - r_lo, 1e-12)
            if lo < r_lo or hi > r_hi or (hi - lo) < 0.5 * span:  # widen at once; narrow when well inside
                self._range = (lo, hi)
        return bar_rows(cols, *self._range, height)

    def on_resize(self) -> None:
        self._range = None
        self._lines = self._layout()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= len(self._lines):
            return Strip.blank(width)
        line = self._lines[y][:width].ljust(width)
        return Strip([Segment(line, self.style)], width)
