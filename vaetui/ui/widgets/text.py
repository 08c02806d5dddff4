"""Text widgets that cost nothing when nothing changed: every repaint is bytes over SSH."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.content import Content
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import RichLog, Static


class Quiet(Static):
    """A Static that redraws only when its text really changes, and then only the cells that changed.

    Textual repaints a whole widget on update: a status line whose clock ticked went out whole,
    every second. Here each line's changed stretch is found from the markup (text and style of
    each character) and only that stretch is refreshed; anything that could move other cells
    (a line wider than the widget, which wraps; wide characters; text not aligned left) still
    refreshes it all.
    """

    _last: str | None = None
    _cells: list | None = None  # _last as cells (see _cells), kept for the next change's comparison
    _only: list[Region] | None = None  # while set() updates: the regions its refresh is limited to

    def set(self, text: str) -> None:
        if text == self._last:
            return
        cells = _cells(text)
        regions = self._changed(self._cells, cells) if self._last is not None else None
        self._last, self._cells = text, cells
        self._only = regions
        try:
            self.update(text, layout=False)  # fixed-size in the CSS: no relayout, only this region is resent
        finally:
            self._only = None

    def refresh(self, *regions, **kwargs):
        if self._only is not None and not regions and not kwargs.get("layout"):
            return super().refresh(*self._only, **kwargs)
        return super().refresh(*regions, **kwargs)

    def _changed(self, a: list | None, b: list | None) -> list[Region] | None:
        """The regions (content coordinates) whose cells differ between two texts' cells, None for all of them."""
        width = self.content_region.width
        if not width or self.styles.text_align not in ("left", "start"):
            return None
        if a is None or b is None:
            return None
        regions = []
        for y in range(max(len(a), len(b))):
            la = a[y] if y < len(a) else []
            lb = b[y] if y < len(b) else []
            if max(len(la), len(lb)) > width:
                return None  # it wraps: a change may move the break
            n = max(len(la), len(lb))
            la, lb = la + [None] * (n - len(la)), lb + [None] * (n - len(lb))
            diff = [x for x in range(n) if la[x] != lb[x]]
            if diff:
                regions.append(Region(diff[0], y, diff[-1] + 1 - diff[0], 1))
        return regions


def _cells(markup: str) -> list[list[tuple[str, tuple]]] | None:
    """Each line of markup as (character, styles) cells; None when a character is not one cell wide."""
    try:
        content = Content.from_markup(markup)
    except Exception:  # not markup we can read: refresh it all
        return None
    lines = []
    for line in content.split("\n"):
        plain = line.plain
        if cell_len(plain) != len(plain):
            return None
        styles: list[tuple] = [()] * len(plain)
        for span in line.spans:
            for i in range(span.start, min(span.end, len(plain))):
                styles[i] += (str(span.style),)
        lines.append(list(zip(plain, styles)))
    return lines


def bar_text(done: int, total: int, width: int) -> str:
    """A progress bar as text: '━━━━╺────  45%'."""
    total = max(total, 1)
    frac = min(max(done / total, 0.0), 1.0)
    cells = max(width - 5, 1)
    full = int(frac * cells)
    head = "╺" if full < cells and frac > 0 else ""
    rest = cells - full - len(head)
    return f"[$primary]{'━' * full}{head}[/][dim]{'─' * rest}[/] {frac * 100:3.0f}%"


class TextBar(Widget):
    """A progress bar drawn as text at its own width; repainted only when the drawn text changes.

    (Textual's ProgressBar repaints continuously: 8 KB/s over SSH even while paused.)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._value = (0, 1)
        self._drawn: tuple | None = None

    def set(self, done: int, total: int) -> None:
        self._value = (done, total)
        key = (self.size.width, bar_text(done, total, self.size.width))
        if key != self._drawn:
            self.refresh()

    def render(self) -> Text:
        text = bar_text(*self._value, self.size.width)
        self._drawn = (self.size.width, text)
        return Text.from_markup(text.replace("$primary", "dodger_blue2"))


class EventLog(RichLog, can_focus=False):
    """The event log; never focused, so home/end/arrows stay with the screen's keys.

    New lines and the scroll to them go out in one frame (RichLog scrolls a frame after it
    draws the lines, so every line was sent twice over SSH), and the rule above the log is
    its box's, not its own: a new line does not send the rule again.
    """

    def show(self, lines, total: int, shown: int) -> int:
        """Write the lines of `lines` (the newest of `total` ever logged) not yet shown; returns the new count."""
        lines = list(lines)
        new = total - shown
        if new <= 0:
            return shown
        follow = self.auto_scroll and self.scroll_y >= self.max_scroll_y
        for line in lines[-new:] if new <= len(lines) else lines:
            self.write(line, scroll_end=False)
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        return total
