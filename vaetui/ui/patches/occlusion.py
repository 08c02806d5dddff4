"""Rendering only what can be seen: a widget hidden behind another is not rendered.

Textual composes a screen front to back and the front-most widget wins each cell; a widget
paints every cell of its visible area (a colour with alpha is blended with its ancestors'
background when it renders, not with whatever lies beneath it). Yet for an update Textual
renders every widget that overlaps the updated area (`Compositor._get_renders`), the ones
entirely behind a box drawn over them too: opening the help over the monitor rendered the
~20 widgets beneath it, several milliseconds of the key press. `install()` replaces that one
method with one that skips a widget whose part inside the updated area lies within the
visible area of one widget in front of it, and a widget outside the updated area (Textual
asks only that its clip, the screen for most, overlaps it: a one-cell update rendered the
header and the key line). A partial update writes only its dirty cells, line by line, yet
Textual renders every widget in the rectangle around them all: a status line at the top and
a picture at the bottom rendered the whole screen (the containers and the labels between
them, ~20 renders a second while following a run). So in a partial update a widget is
rendered only when one of the cells it shows is to be written. What is drawn is the same;
less is rendered.

It also mends what Textual's compositor took from those renders. A reflow builds the
complete map of widgets but leaves the map marked stale when widgets were new before it
(`update_widgets` marks it), and the next question about a widget's region rebuilds it.
Rendering the widgets beneath the help asked one such question while the help was still
shown; with them skipped, the first question came after the help was hidden, the rebuilt
map already lacked it, the reflow that followed saw nothing change, and the closed help
stayed on the screen. `install()` marks the map current after a reflow, which it is.
"""

from __future__ import annotations

import inspect
from typing import Iterable

from textual.geometry import Region
from textual.strip import Strip

try:
    from textual._compositor import Compositor
except ImportError:  # a Textual without it: its own rendering stands
    Compositor = None

_installed = False


def get_renders(self: Compositor, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
    """Compositor._get_renders without the widgets that a single widget in front of them hides in crop, nor,
    in a partial update, those with no cell to write that the widgets in front leave showing."""
    _rich_traceback_guard = True  # noqa: F841 (Textual's own: a render error's traceback starts here)
    shown: list[Region] = []  # the visible areas of the widgets met so far (front to back)
    spans = getattr(self, "_dirty_spans", None)  # in a partial update: per line, the cells it writes
    for widget, (region, clip) in self.visible_widgets.items():
        area = region.intersection(clip)
        seen = area.intersection(crop) if crop is not None else area
        if not seen.area:
            continue  # outside the update (Textual asks only that the widget's clip, often the screen, overlaps it)
        if any(front.contains_region(seen) for front in shown):
            continue  # entirely behind one widget: nothing of it would be drawn
        shown.append(area)
        if spans is not None and not _writes(area, spans, shown[:-1]):
            continue  # none of its cells is written, or those are behind the widgets in front of it
        yield region, clip, widget.render_lines(Region(area.x - region.x, area.y - region.y,
                                                       area.width, area.height))


def _writes(area: Region, spans: dict[int, list[tuple[int, int]]], fronts: list[Region]) -> bool:
    """Whether a cell of area is among the cells to write (spans: per line, [x1, x2) ranges) and not behind
    one of the fronts."""
    left, right = area.x, area.right
    for y in area.line_range:
        for x1, x2 in spans.get(y, ()):
            lo, hi = max(x1, left), min(x2, right)
            if lo >= hi:
                continue
            for a, b in sorted((f.x, f.right) for f in fronts if f.y <= y < f.bottom and f.x < hi and f.right > lo):
                if a > lo:
                    return True  # a gap between the fronts: a cell of this widget shows
                lo = max(lo, b)
                if lo >= hi:
                    break
            if lo < hi:
                return True
    return False


def _spans_known(render_partial_update):
    def partial_update_with_spans(self: Compositor):
        spans: dict[int, list[tuple[int, int]]] = {}
        for y, x1, x2 in self._regions_to_spans(self._dirty_regions):
            spans.setdefault(y, []).append((x1, x2))
        self._dirty_spans = spans
        try:
            return render_partial_update(self)
        finally:
            self._dirty_spans = None

    partial_update_with_spans.__doc__ = render_partial_update.__doc__
    return partial_update_with_spans


def _current_after(reflow):
    def current_reflow(self: Compositor, parent, size):
        result = reflow(self, parent, size)
        self._full_map_invalidated = False  # the map it just built covers every widget (as full_map would)
        return result

    current_reflow.__doc__ = reflow.__doc__
    return current_reflow


def install() -> bool:
    """Skip hidden widgets in every update of this process (once). Only on a Textual whose compositor is the
    one this was written against (`_get_renders(self, crop)`, `reflow(self, parent, size)`, the
    `_full_map_invalidated` flag, a `render_partial_update(self)` that renders the spans of its
    `_dirty_regions`); else Textual's own stands."""
    global _installed
    if _installed or Compositor is None:
        return _installed
    try:
        fits = (list(inspect.signature(Compositor._get_renders).parameters) == ["self", "crop"]
                and list(inspect.signature(Compositor.reflow).parameters) == ["self", "parent", "size"]
                and "_full_map_invalidated" in Compositor.full_map.fget.__code__.co_names
                and list(inspect.signature(Compositor.render_partial_update).parameters) == ["self"]
                and {"_dirty_regions", "_regions_to_spans", "_render_chops"}
                <= set(Compositor.render_partial_update.__code__.co_names))
    except (AttributeError, TypeError, ValueError):
        fits = False
    if fits:
        Compositor._get_renders = get_renders
        Compositor.reflow = _current_after(Compositor.reflow)
        Compositor.render_partial_update = _spans_known(Compositor.render_partial_update)
        _installed = True
    return _installed
