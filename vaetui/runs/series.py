"""A bounded curve: the newest points exactly, older ones as min/max buckets, so memory stays flat for any run.

Buckets keep each stretch's lowest and highest point (spikes survive downsampling) and
merge in pairs when there are too many, so a million steps cost the same as a few thousand.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterable

RECENT = 2048  # newest points of a series, kept exactly
BUCKETS = 512  # older points: at most this many min/max buckets


class Series:
    """x/y points of one curve, bounded: the newest exactly, older ones as min/max buckets (spikes survive)."""

    __slots__ = ("recent", "buckets", "width", "_open", "count")

    def __init__(self):
        self.recent: deque[tuple[float, float]] = deque()
        self.buckets: list[list[float]] = []  # [x_min_y, y_min, x_max_y, y_max, n]
        self.width = 1  # points per closed bucket
        self._open: list[float] | None = None
        self.count = 0

    def add(self, x: float, y: float) -> None:
        if self.recent and x <= self.recent[-1][0]:
            self.trim(x)  # a step seen again (after a roll-back): the new value replaces the old ones
        self.recent.append((x, y))
        self.count += 1
        if len(self.recent) > RECENT:
            self._to_buckets(*self.recent.popleft())

    def extend(self, xs, ys) -> None:
        """Many points, in bulk (a long log's first read): the older ones are bucketed with numpy."""
        import numpy as np

        n = len(xs)
        if n < 256 or (self.recent and xs[0] <= self.recent[-1][0]) or any(b <= a for a, b in zip(xs, xs[1:])):
            for x, y in zip(xs, ys):
                self.add(x, y)
            return
        self.count += n
        keep = list(self.recent) + list(zip(xs, ys))
        older, self.recent = keep[:-RECENT], deque(keep[-RECENT:])
        if not older:
            return
        ox = np.fromiter((p[0] for p in older), float, len(older))
        oy = np.fromiter((p[1] for p in older), float, len(older))
        i = 0
        while self._open is not None and i < len(ox):  # fill the bucket left open first
            self._to_buckets(float(ox[i]), float(oy[i]))
            i += 1
        ox, oy = ox[i:], oy[i:]
        while len(ox):
            # grow the width first if these points alone would exceed the bucket budget
            while len(self.buckets) + len(ox) // self.width > BUCKETS:
                self._merge()
            full = len(ox) // self.width * self.width
            if full:
                bx, by = ox[:full].reshape(-1, self.width), oy[:full].reshape(-1, self.width)
                lo, hi = by.argmin(1), by.argmax(1)
                rows = np.arange(len(by))
                self.buckets.extend([float(a), float(b), float(c), float(d), self.width] for a, b, c, d in
                                    zip(bx[rows, lo], by[rows, lo], bx[rows, hi], by[rows, hi]))
            for x, y in zip(ox[full:].tolist(), oy[full:].tolist()):
                self._to_buckets(x, y)
            ox = ox[:0]
            while len(self.buckets) > BUCKETS:
                self._merge()

    def _to_buckets(self, x: float, y: float) -> None:
        b = self._open
        if b is None:
            self._open = b = [x, y, x, y, 0]
        elif y < b[1]:
            b[0], b[1] = x, y
        elif y > b[3]:
            b[2], b[3] = x, y
        b[4] += 1
        if b[4] >= self.width:
            self.buckets.append(b)
            self._open = None
            if len(self.buckets) > BUCKETS:
                self._merge()

    def _merge(self) -> None:
        merged = []
        for i in range(0, len(self.buckets) - 1, 2):
            a, b = self.buckets[i], self.buckets[i + 1]
            lo = a if a[1] <= b[1] else b
            hi = a if a[3] >= b[3] else b
            merged.append([lo[0], lo[1], hi[2], hi[3], a[4] + b[4]])
        if len(self.buckets) % 2:
            merged.append(self.buckets[-1])
        self.buckets = merged
        self.width *= 2

    def trim(self, x: float) -> None:
        """Drop every point at x or later."""
        while self.recent and self.recent[-1][0] >= x:
            self.recent.pop()
        if not self.recent:
            self._open = None
            self.buckets = [b for b in self.buckets if max(b[0], b[2]) < x]

    def backfill(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        """Older points than any held (read later, from the start of a long log): they go into the buckets."""
        recent = self.recent
        self.recent, self.buckets, self._open, self.width = deque(), [], None, 1
        first = recent[0][0] if recent else math.inf
        for x, y in zip(xs, ys):
            if x < first:
                self._to_buckets(x, y)
                self.count += 1
        if self._open is not None:
            self.buckets.append(self._open)
            self._open = None
        self.recent = recent

    def points(self) -> tuple[list[float], list[float]]:
        """All points to draw, oldest first (each old bucket as its min and max, in x order)."""
        xs: list[float] = []
        ys: list[float] = []
        for b in self.buckets + ([self._open] if self._open else []):
            for x, y in sorted(((b[0], b[1]), (b[2], b[3]))) if b[0] != b[2] else ((b[0], b[1]),):
                xs.append(x)
                ys.append(y)
        for x, y in self.recent:
            xs.append(x)
            ys.append(y)
        return xs, ys

    def tail(self, n: int) -> list[float]:
        """The newest n values."""
        return [y for _, y in list(self.recent)[-n:]]

    @property
    def last(self) -> float | None:
        return self.recent[-1][1] if self.recent else None

    @property
    def xs(self) -> list[float]:
        return self.points()[0]

    @property
    def ys(self) -> list[float]:
        return self.points()[1]

    def __len__(self) -> int:
        return len(self.recent) + len(self.buckets)


COLUMNS = 512  # columns of a heat map kept (KL per dimension over the run): more than a terminal is wide


class Columns:
    """A vector a step (KL per latent dimension), bounded: past COLUMNS, neighbouring columns are merged into their
    mean (weighted by the steps each holds), so the whole run stays in view at a flat cost."""

    __slots__ = ("cols",)

    def __init__(self):
        self.cols: list[list] = []  # [first step, last step, vector, how many merged]

    def add(self, step: int, values: list[float]) -> None:
        if self.cols and step <= self.cols[-1][1]:
            self.trim(step)  # a step seen again (a resume, a roll-back): the new values replace the old ones
        self.cols.append([step, step, list(values), 1])
        if len(self.cols) > COLUMNS:
            self._merge()

    def _merge(self) -> None:
        merged = []
        for i in range(0, len(self.cols) - 1, 2):
            a, b = self.cols[i], self.cols[i + 1]
            n = a[3] + b[3]
            merged.append([a[0], b[1], [(x * a[3] + y * b[3]) / n for x, y in zip(a[2], b[2])], n]
                          if len(a[2]) == len(b[2]) else b)
        if len(self.cols) % 2:
            merged.append(self.cols[-1])
        self.cols = merged

    def trim(self, step: float) -> None:
        """Drop every column that reaches step or later."""
        self.cols = [c for c in self.cols if c[1] < step]

    def steps(self) -> list[int]:
        return [c[1] for c in self.cols]

    def matrix(self) -> list[list[float]]:
        """Columns oldest first, each a vector."""
        return [c[2] for c in self.cols]

    @property
    def last(self) -> list[float] | None:
        return self.cols[-1][2] if self.cols else None

    def __len__(self) -> int:
        return len(self.cols)
