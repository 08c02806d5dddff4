"""Text widgets that cost nothing when nothing changed: every repaint is bytes over SSH."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import RichLog, Static


class Quiet(Static):
    """A Static that redraws only when its text really changes."""

    _last: str | None = None

    def set(self, text: str) -> None:
        if text != self._last:
            self._last = text
            self.update(text, layout=False)  # fixed-size in the CSS: no relayout, only this region is resent


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
    """The event log; never focused, so home/end/arrows stay with the screen's keys."""

    def show(self, lines, total: int, shown: int) -> int:
        """Write the lines of `lines` (the newest of `total` ever logged) not yet shown; returns the new count."""
        lines = list(lines)
        new = total - shown
        if new <= 0:
            return shown
        for line in lines[-new:] if new <= len(lines) else lines:
            self.write(line)
        return total
