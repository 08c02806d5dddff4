"""The key line at the bottom of every screen: what each key does here, drawn as one line of text.

Textual's Footer composes a widget per key and recomposes them on every screen or focus
change; beside a 200-row table that made a key press cost up to 130 ms here, and every
recompose is a repaint over SSH. This bar renders the same bindings as text, and redraws
only when the text it would draw changes.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


def key_hints(screen) -> list[tuple[str, str]]:
    """(key as shown, what it does) for the bindings shown on this screen (the screen's, then the app's)."""
    seen, out = set(), []
    for _, binding, enabled, _tooltip in screen.active_bindings.values():
        if not binding.show or not enabled or binding.action in seen:
            continue
        seen.add(binding.action)
        out.append((screen.app.get_key_display(binding), binding.description))
    return out


class KeyBar(Widget):
    """One line: 'p pause/resume  s stop  …', as much as fits."""

    DEFAULT_CSS = """
    KeyBar { height: 1; dock: bottom; background: $panel; color: $text-muted; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._drawn: str | None = None

    def on_mount(self) -> None:
        self.watch(self.screen, "focused", lambda _: self.update_keys(), init=False)

    def on_screen_resume(self) -> None:
        self.update_keys()

    def update_keys(self) -> None:
        if self._text() != self._drawn:
            self.refresh()

    def _text(self) -> str:
        return "  ".join(f"{key} {what}" for key, what in key_hints(self.screen))

    def render(self) -> Text:
        self._drawn = self._text()
        out = Text(no_wrap=True, overflow="ellipsis")
        for key, what in key_hints(self.screen):
            out.append(f" {key} ", style="bold")
            out.append(f"{what} ")
        return out
