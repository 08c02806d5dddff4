"""A line chart drawn with braille dots, with axes: pure rendering plus a focusable widget."""

from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from vaetui.format import is_finite

# Braille dot bits: (column, row) -> bit, for a 2x4 cell.
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-2:
        return f"{v:.2e}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def render_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float], str]], width: int, height: int,
                 log_y: bool = False, x_label: str = "step", lines: bool = True, title: str | None = None) -> Text:
    """Plot (name, xs, ys, colour) lines in width x height cells: y labels left, x axis below, legend on top
    (or a title instead, where a chart beside it already names the colours).

    With lines=False each point is a dot of its own (a scatter)."""
    width, height = max(width, 20), max(height, 5)
    pts = [(n, [x for x, y in zip(xs, ys) if _ok(y, log_y)], [y for y in ys if _ok(y, log_y)], c)
           for n, xs, ys, c in series]
    pts = [p for p in pts if p[1]]
    out = Text()
    legend = Text()
    for name, _, _, colour in pts if title is None else ():
        legend.append("━ ", style=colour)
        legend.append(f"{name}   ")
    if title is not None:
        legend.append(title, style="bold")
    if log_y:
        legend.append("(log y)", style="dim")
    out.append_text(legend)
    out.append("\n")
    if not pts:
        out.append("no data yet", style="dim")
        return out
    tf = (lambda y: math.log10(y)) if log_y else (lambda y: y)
    all_x = [x for p in pts for x in p[1]]
    all_y = [tf(y) for p in pts for y in p[2]]
    x0, x1 = min(all_x), max(all_x)
    y0, y1 = min(all_y), max(all_y)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    label_w = max(len(_fmt(10**y1 if log_y else y1)), len(_fmt(10**y0 if log_y else y0))) + 1
    plot_w, plot_h = width - label_w - 1, height - 3
    plot_w, plot_h = max(plot_w, 4), max(plot_h, 2)
    cells = [[0] * plot_w for _ in range(plot_h)]
    owner: list[list[str | None]] = [[None] * plot_w for _ in range(plot_h)]
    dots_w, dots_h = plot_w * 2, plot_h * 4
    for _, xs, ys, colour in pts:
        prev = None
        for x, y in zip(xs, ys):
            px = round((x - x0) / (x1 - x0) * (dots_w - 1))
            py = round((1 - (tf(y) - y0) / (y1 - y0)) * (dots_h - 1))
            bx, by = min(px, dots_w - 2), min(py, dots_h - 2)  # a scatter's point: 2x2 dots, inside the plot
            dots = _line(prev, (px, py)) if lines else [(bx + a, by + b) for a in (0, 1) for b in (0, 1)]
            for qx, qy in dots:
                cx, cy = qx // 2, qy // 4
                cells[cy][cx] |= _DOTS[qy % 4][qx % 2]
                owner[cy][cx] = colour
            prev = (px, py) if lines else None
    for r in range(plot_h):
        if r == 0:
            label = _fmt(10**y1 if log_y else y1)
        elif r == plot_h - 1:
            label = _fmt(10**y0 if log_y else y0)
        elif r == plot_h // 2:
            mid = (y0 + y1) / 2
            label = _fmt(10**mid if log_y else mid)
        else:
            label = ""
        out.append(label.rjust(label_w - 1) + " ┤" if label else " " * label_w + "│", style="dim")
        for c in range(plot_w):
            bits = cells[r][c]
            out.append(chr(0x2800 + bits) if bits else " ", style=owner[r][c] or "")
        out.append("\n")
    out.append(" " * label_w + "└" + "─" * plot_w + "\n", style="dim")
    left, right = _fmt(x0), _fmt(x1)
    gap = max(1, plot_w - len(left) - len(right) - len(x_label) - 2)
    out.append(" " * (label_w + 1) + left + " " * (gap // 2) + x_label + " " * (gap - gap // 2) + right, style="dim")
    return out


def _ok(y: float, log_y: bool) -> bool:
    return is_finite(y) and (y > 0 or not log_y)


def _line(a, b):
    """Dots from a to b (Bresenham), b included; just b when a is None."""
    if a is None:
        return [b]
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err, out = dx + dy, []
    while True:
        out.append((x0, y0))
        if (x0, y0) == (x1, y1):
            return out
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


class Chart(Widget, can_focus=True):
    """A focusable chart of one or more series; `l` toggles log y."""

    BINDINGS = [Binding("l", "toggle_log", "log y")]
    log_y: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None, x_label: str = "step",
                 lines: bool = True, title: str | None = None):
        super().__init__(id=id, classes=classes)
        self._series: list[tuple[str, Sequence[float], Sequence[float], str]] = []
        self.x_label, self.lines, self.title = x_label, lines, title

    def set_series(self, series) -> None:
        """Replace the plotted lines: [(name, xs, ys, colour), ...]."""
        self._series = list(series)
        self.refresh()

    def action_toggle_log(self) -> None:
        self.log_y = not self.log_y

    def watch_log_y(self) -> None:
        self.refresh()

    def render(self) -> Text:
        return render_chart(self._series, self.size.width, self.size.height, self.log_y, self.x_label, self.lines,
                            self.title)
