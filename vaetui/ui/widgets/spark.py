"""A sparkline of the whole run that, while the run goes on, redraws only its newest column.

Textual's Sparkline colours every cell with a gradient and shifts with every point: four
of them redrawn each second were most of what the monitor sent over SSH. This one draws
each row in one colour (a row is one escape code and its characters) and gives each column
a fixed stretch of steps counted from the run's first step (`run_columns`): a new point
changes only the newest column, until the run outgrows the width and every stretch widens
by a quarter or so (a few dozen times in a run of thousands of steps). Its y-range is
sticky (it widens past a new extreme with a margin, narrows only when the data moved well
inside it) and leaves out the first column (the first steps' loss would flatten the rest).
Only the columns whose cells changed are sent again.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

BARS = " ▁▂▃▄▅▆▇█"


def _stretches():
    """1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ...: four widths to each doubling."""
    seen = 0
    for k in range(80):
        for m in (4, 5, 6, 7):
            s = max(1, (m << k) >> 2)
            if s > seen:
                seen = s
                yield s


def run_columns(xs: list[float], ys: list[float], width: int) -> list[float]:
    """The run as at most `width` columns, each the mean of the points in its stretch of steps.

    Stretches are 4, 5, 6 or 7 times 2**k / 4 steps wide (the narrowest that fits: the columns
    fill 7/8 of the width or more), counted from the first step, so the columns already drawn
    stay as they are while points arrive; a stretch with no point holds the value before it.
    """
    if not xs or width <= 0:
        return []
    first = xs[0]
    stretch = next(s for s in _stretches() if (xs[-1] - first) // s + 1 <= width)
    n = int((xs[-1] - first) // stretch) + 1
    sums, counts = [0.0] * n, [0] * n
    for x, y in zip(xs, ys):
        k = int((x - first) // stretch)
        sums[k] += y
        counts[k] += 1
    out: list[float] = []
    for total, count in zip(sums, counts):
        out.append(total / count if count else out[-1])
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


def sticky_range(current: tuple[float, float] | None, lo: float, hi: float) -> tuple[float, float]:
    """The y-range to draw lo..hi in: the current one while the data stays inside it and fills half of it;
    else widened past the new extreme by a quarter of the data's span, so that a loss that keeps
    creeping down does not move every bar at each new low."""
    if current is None:
        return lo, hi
    r_lo, r_hi = current
    if (hi - lo) < 0.5 * max(r_hi - r_lo, 1e-12):
        return lo, hi
    pad = 0.25 * (hi - lo)
    return (lo - pad if lo < r_lo else r_lo), (hi + pad if hi > r_hi else r_hi)


class Spark(Widget):
    """A multi-row sparkline of a whole run, in one colour."""

    DEFAULT_CSS = "Spark { height: 1fr; }"

    def __init__(self, colour: str = "dodger_blue2", **kwargs):
        super().__init__(**kwargs)
        self.style = Style(color=colour)
        self._points: tuple[list[float], list[float]] = ([], [])
        self._range: tuple[float, float] | None = None
        self._lines: list[str] = []

    def set(self, xs: list[float], ys: list[float]) -> None:
        """The curve's points (x: the step, oldest first)."""
        kept = [(x, y) for x, y in zip(xs, ys) if y == y and abs(y) != float("inf")]
        self._points = ([x for x, _ in kept], [y for _, y in kept])
        lines = self._layout()
        if lines == self._lines:
            return
        old, self._lines = self._lines, lines
        changed = [x for x in range(self.size.width)
                   if len(old) != len(lines) or any(a[x:x + 1] != b[x:x + 1] for a, b in zip(old, lines))]
        if len(changed) > self.size.width // 2:
            self.refresh()
        else:
            self.refresh(*(Region(x, 0, 1, self.size.height) for x in changed))

    def _layout(self) -> list[str]:
        width, height = self.size.width, max(self.size.height, 1)
        cols = run_columns(*self._points, width)
        if not cols:
            return []
        shown = cols[1:] if len(cols) > 2 else cols  # the first steps' values are far above the rest
        lo, hi = min(cols), max(shown)
        self._range = sticky_range(self._range, lo, hi)
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
