"""What Textual writes to the terminal for a partial update: only the cells asked for.

A widget that refreshes a region (`Widget.refresh(Region(...))`: the sparkline's newest
column, a picture's changed cells, the digits of a status line that moved) marks just
those cells dirty, but Textual's `ChopsUpdate.render_segments` (textual 8) writes each
dirty line from the left edge of the widget beneath it up to the region's end: a region at
the right of a wide widget costs the whole row. `install()` replaces that one method with
one that also crops the start (where no wide character straddles the cut), so a partial
refresh costs what it changed. The output is otherwise the same: a cursor move, then the
cells, line by line.
"""

from __future__ import annotations

import inspect

from rich.cells import cell_len
from rich.control import Control

try:
    from textual._compositor import ChopsUpdate
except ImportError:  # a Textual without it: its own rendering stands
    ChopsUpdate = None

_installed = False


def _single_width(strip) -> bool:
    return all(cell_len(seg.text) == len(seg.text) for seg in strip)


def render_segments(self: ChopsUpdate, console) -> str:
    """ChopsUpdate.render_segments, cropped at both ends of each dirty span."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops, chop_ends = self.chops, self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        line = chops[y]
        for end, (x, strip) in zip(chop_ends[y], line.items()):
            if strip is None or x > x2 or end <= x1:
                continue
            start = max(x1 - x, 0)
            if start and not _single_width(strip):
                start = 0  # a cut through a wide character would draw half of it
            stop = min(end, x2) - x
            if stop <= start:
                continue
            if start or stop < end - x:
                strip = strip.crop(start, stop)
            append(move_to(x + start, y).segment.text)
            append(strip.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def install() -> bool:
    """Use the cropping render for every partial update of this process (once). Only on a Textual whose
    ChopsUpdate is the one this was written against (chops, spans, chop_ends); else Textual's own stands."""
    global _installed
    if not _installed and ChopsUpdate is not None and hasattr(ChopsUpdate, "render_segments"):
        if list(inspect.signature(ChopsUpdate.__init__).parameters)[1:] == ["chops", "spans", "chop_ends"]:
            ChopsUpdate.render_segments = render_segments
            _installed = True
    return _installed


def write_raw(app, text: str) -> None:
    """Send bytes Textual does not make (an alert's bell and desktop notification) to the app's terminal, in order
    with its frames: through its driver, which Textual keeps private (`App._driver`). No driver (headless, or
    closing): nothing is written."""
    driver = getattr(app, "_driver", None)
    if driver is not None and not getattr(app, "is_headless", False):
        driver.write(text)
        driver.flush()
