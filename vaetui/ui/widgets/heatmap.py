"""KL per latent dimension over the run, as a steps × dimensions heat map in half blocks: dimensions switching on
or collapsing as it happens, with the KL schedule's warm-up end and cycles marked beneath and the free-bits floor
in a colour of its own. Pure rendering (`render_heat`) plus a widget that redraws when it is given new columns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from vaetui.format import is_finite

ACTIVE_KL = 0.01  # nats: a dimension above this carries something (the collapse alert's threshold)
TOP_KL = 20.0  # nats: the colour scale's top (a dimension above it is drawn as at it)
# A ramp from "nothing" to "much", readable in 256 colours and truecolour: dark blue, teal, green, yellow.
RAMP = ((20, 24, 60), (33, 94, 140), (32, 150, 140), (90, 200, 100), (250, 230, 40))
NOTHING = (12, 12, 12)  # below ACTIVE_KL
FLOOR = (150, 60, 150)  # at or under the free-bits floor: held up by it, not by the data


@dataclass(frozen=True)
class Schedule:
    """Where the KL schedule changes, in steps: the warm-up's end and the start of each cycle."""

    warmup: int = 0
    cycles: int = 0
    total: int = 0
    free_bits: float = 0.0

    @classmethod
    def of(cls, config, total_steps: int) -> "Schedule":
        tc = config.train
        return cls(tc.kl_warmup, tc.kl_cycles, total_steps, tc.free_bits)

    def marks(self) -> list[tuple[int, str]]:
        from vaetui.models.losses import schedule_marks

        return schedule_marks(self.warmup, self.cycles, self.total)


def _colour(v: float, top: float, floor: float) -> tuple[int, int, int]:
    if not is_finite(v) or v < ACTIVE_KL:
        return NOTHING
    if floor > 0 and v <= floor * 1.02:
        return FLOOR
    t = (math.log10(v) - math.log10(ACTIVE_KL)) / max(math.log10(max(top, ACTIVE_KL * 10)) - math.log10(ACTIVE_KL), 1e-9)
    t = min(max(t, 0.0), 1.0) * (len(RAMP) - 1)
    i = min(int(t), len(RAMP) - 2)
    f = t - i
    a, b = RAMP[i], RAMP[i + 1]
    return tuple(round(x + (y - x) * f) for x, y in zip(a, b))


def _columns(steps: Sequence[int], matrix: Sequence[Sequence[float]], width: int, total: int):
    """The data placed at `width` columns by step: column j covers steps (j·T/W, (j+1)·T/W] of the run's T planned
    steps, its mean there (None: not reached). Placing by step, not by count, keeps the columns already drawn
    unchanged as the run goes on: a new step event redraws one column."""
    total = max(total, steps[-1] if steps else 1, 1)
    sums: list[list[float] | None] = [None] * width
    counts = [0] * width
    for step, col in zip(steps, matrix):
        j = min(width - 1, max(0, math.ceil(step * width / total) - 1))
        if sums[j] is None:
            sums[j] = [0.0] * len(col)
        sums[j] = [a + b for a, b in zip(sums[j], col)]
        counts[j] += 1
    out = [None if s is None else [v / n for v in s] for s, n in zip(sums, counts)]
    reached = max((j for j, c in enumerate(out) if c is not None), default=-1)
    for j in range(1, reached):  # fewer events than columns: a column between two holds the one before
        if out[j] is None:
            out[j] = out[j - 1]
    return out, total


def _group_dims(column: list[float], rows: int) -> list[float]:
    """Dimensions to at most `rows` pixel rows: each the largest of its group (a dimension switching on shows)."""
    d = len(column)
    if d <= rows:
        return column
    return [max(column[k * d // rows:max((k + 1) * d // rows, k * d // rows + 1)]) for k in range(rows)]


GUTTER = 4  # the dimension labels' width


def _painted(steps, matrix, width: int, height: int, schedule: Schedule, total: int):
    """What the heat map paints: (active, dims, total, the colours of each column's cells, top to bottom as
    (upper, lower) half-block pairs; None for a column not reached), and the pixel rows' dimension labels."""
    dims = len(matrix[-1])
    keep = [i for i, c in enumerate(matrix) if len(c) == dims]
    steps, matrix = [list(steps)[i] for i in keep], [matrix[i] for i in keep]
    active = sum(v >= ACTIVE_KL for v in matrix[-1])
    top = _nice(0.0)
    cols, rows = max(width - GUTTER, 4), max(height - 2, 1)
    placed, total = _columns(steps, matrix, cols, total or schedule.total)
    n_px = min(dims, rows * 2)
    repeat = max(1, (rows * 2) // n_px) if dims <= rows * 2 else 1  # few dimensions: each several pixels tall
    n_rows = n_px * repeat
    painted = []
    for c in placed:
        if c is None:
            painted.append(None)
            continue
        px = [v for v in _group_dims(c, n_px) for _ in range(repeat)]
        painted.append([(_colour(px[2 * r], top, schedule.free_bits),
                         _colour(px[2 * r + 1], top, schedule.free_bits) if 2 * r + 1 < n_rows else None)
                        for r in range((n_rows + 1) // 2)])
    labels = []
    shown = -1
    for r in range((n_rows + 1) // 2):
        dim = 2 * r // repeat * dims // n_px
        label = f"z{dim}" if dim != shown and (repeat > 1 or r % 2 == 0) else ""
        shown = dim if label else shown
        labels.append(label)
    return active, dims, total, painted, labels


def render_heat(steps: Sequence[int], matrix: Sequence[Sequence[float]], width: int, height: int,
                schedule: Schedule = Schedule(), total: int = 0) -> Text:
    """The heat map in width × height cells: a title line, dimensions down (two a cell, half blocks), the run's
    planned steps across (`total`), the schedule's marks beneath."""
    out = Text()
    if not matrix or not matrix[-1]:
        out.append("KL per dimension: none logged yet (a discrete code has none)", style="dim")
        return out
    active, dims, total, painted, labels = _painted(steps, matrix, width, height, schedule, total)
    cols = max(width - GUTTER, 4)
    out.no_wrap, out.overflow = True, "crop"
    out.append(f"active {active}/{dims}", style="bold green" if active else "bold red")
    out.append(f"  KL 0.01–{_nice(0.0):g} (log)", style="dim")
    if schedule.free_bits > 0:
        out.append("  ■", style=Style(color="rgb({},{},{})".format(*FLOOR)))
        out.append("≤free bits", style="dim")
    out.append("\n")
    for r, label in enumerate(labels):
        out.append(f"{label:>{GUTTER - 1}} ", style="dim")
        for c in painted:
            if c is None:
                out.append(" ")
                continue
            up, down = c[r]
            out.append("▀", style=Style(color="rgb({},{},{})".format(*up),
                                         bgcolor=None if down is None else "rgb({},{},{})".format(*down)))
        out.append("\n")
    marks = [" "] * cols
    for step, ch in schedule.marks():
        if 0 < step <= total:
            marks[min(cols - 1, max(0, math.ceil(step * cols / total) - 1))] = "▲" if ch == "w" else "△"
    out.append(" " * GUTTER + "".join(marks).rstrip(), style="yellow")
    legend = (" ▲ warm-up end" if "▲" in marks else "") + (" △ cycle" if "△" in marks else "")
    if legend and len("".join(marks).rstrip()) + GUTTER + len(legend) <= width:
        out.append(legend, style="dim")
    return out


def _nice(top: float) -> float:
    """The colour scale's top: fixed at TOP_KL nats (log from ACTIVE_KL), more than a dimension of these models
    carries, so no new maximum recolours what is drawn (a repaint of every cell, tens of KB over SSH)."""
    return TOP_KL


class HeatMap(Widget):
    """The heat map of a run's KL per dimension (History.kl_dims). Given new columns, it repaints only what changed:
    the title and the columns whose step range took new data (one, as a run goes on), unless the scale or the plan
    moved."""

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._steps: list[int] = []
        self._matrix: list[list[float]] = []
        self.schedule = Schedule()
        self.total = 0
        self._drawn: tuple | None = None  # (size, scale, total, dims, columns placed) of the last paint

    def set_columns(self, steps, matrix, schedule: Schedule | None = None, total: int = 0) -> None:
        """New columns: repaint the title if its count changed and the columns whose colours changed (one, as a run
        goes on; none when a new event only moves a value within its colour), all of it when the size or plan
        moved."""
        from textual.geometry import Region

        self._steps, self._matrix = list(steps), [list(c) for c in matrix]
        if schedule is not None:
            self.schedule = schedule
        self.total = total or self.schedule.total
        width, height = self.size.width, self.size.height
        if not self._matrix or not self._matrix[-1] or not width:
            self._drawn = None
            self.refresh()
            return
        active, dims, total, painted, _ = _painted(self._steps, self._matrix, width, height, self.schedule,
                                                   self.total)
        key = ((width, height), total, dims)
        before, self._drawn = self._drawn, (key, active, painted)
        if before is None or before[0] != key:
            self.refresh()
            return
        regions = [Region(0, 0, width, 1)] if before[1] != active else []
        regions += [Region(GUTTER + j, 1, 1, height - 1) for j, (a, b) in enumerate(zip(before[2], painted))
                    if a != b]
        if regions:
            self.refresh(*regions)

    def render(self) -> Text:
        return render_heat(self._steps, self._matrix, self.size.width, self.size.height, self.schedule, self.total)
