"""Small modal screens: confirm, help, the full chart, terminal too small."""

from __future__ import annotations

import weakref

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region
from textual.screen import ModalScreen, Screen
from textual.strip import Strip
from textual.widgets import Input, Static

from vaetui.runs.history import SERIES, SERIES_LABELS, History
from vaetui.runs.smoothing import SMOOTH_STEPS, X_AXES, X_LABELS, next_of
from vaetui.ui.widgets.chart import Chart
from vaetui.ui.widgets.keybar import KeyBar

MIN_WIDTH, MIN_HEIGHT = 80, 24
HELP_WIDTH = 78  # the help box, border and padding included: fits 80 columns


class Confirm(ModalScreen[bool]):
    """A yes/no question; y/enter answers yes, n/escape no."""

    BINDINGS = [Binding("y,enter", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            yield Static("[b]y[/] yes    [b]n[/] no", id="answers")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Choose(ModalScreen[str | None]):
    """A question with a few answers, each a key; escape answers None."""

    def __init__(self, question: str, answers: list[tuple[str, str]]):
        """answers: (key, what it does), e.g. ("y", "stop it and quit")."""
        super().__init__()
        self.question, self.answers = question, answers
        for key, _ in answers:
            self._bindings.bind(key, f"answer('{key}')", show=False)
        self._bindings.bind("escape", "answer(None)", show=False)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            yield Static("    ".join(f"[b]{key}[/] {what}" for key, what in self.answers) + "    [b]esc[/] cancel",
                         id="answers")

    def action_answer(self, key: str | None) -> None:
        self.dismiss(key)


class Ask(ModalScreen[str | None]):
    """One line of text (a new run name): enter accepts, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, question: str, value: str = ""):
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            yield Input(self.value, id="answer")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


GLOBAL_KEYS = ("t", "u", "g", "i", "r", "d", "z", "n", "question_mark", "q")  # navigation: no screen reuses them


def _keys(binding) -> list[str]:
    return [k.strip() for k in binding.key.split(",")]


def bindings_of(screen) -> list:
    """A screen's own bindings, base classes' too (what its keys do there), in declaration order."""
    seen, out = set(), []
    for cls in type(screen).__mro__:
        if cls.__module__.startswith("textual."):  # Textual's own (focus, copy) are not this screen's keys
            break
        for binding in cls.__dict__.get("BINDINGS", []):
            if binding.action not in seen:
                seen.add(binding.action)
                out.append(binding)
    return out


_HELP_TEXTS: dict[tuple, str] = {}  # by (app class, screen class, screen name): key bindings are class-level


def help_text(app, screen) -> str:
    """The help for the screen it is opened over: exactly its keys, then the keys that work anywhere."""
    try:
        name = screen.sub_title or ""
    except Exception:  # a screen not mounted yet
        name = ""
    name = (name or type(screen).__name__.removesuffix("Screen").lower()).split(" · ")[0]
    key = (type(app), type(screen), name)
    if key not in _HELP_TEXTS:  # made once: the key press that opens it should not wait for markup and widths
        _HELP_TEXTS[key] = _help_text(app, screen, name)
    return _HELP_TEXTS[key]


def _help_text(app, screen, name: str) -> str:
    def rows(bindings) -> list[str]:
        cells = []
        for b in bindings:
            key = "/".join(app.get_key_display(type(b)(k, b.action, b.description)) for k in _keys(b))
            cells.append(f"[b]{key}[/] {b.description}")
        return cells

    here = rows([b for b in bindings_of(screen) if b.description])
    anywhere = rows([b for b in app.BINDINGS if b.show or b.key == "n"])
    lines = [f"[b]vaetui[/] — keys here ([b]{name}[/]), then anywhere"]
    for group in (here, anywhere):
        width = max((len(_plain(c)) for c in group), default=0) + 2
        per_row = max(1, (HELP_WIDTH - 4) // max(width, 1))  # inside the border and padding
        for i in range(0, len(group), per_row):
            lines.append("  " + "".join(c + " " * (width - len(_plain(c))) for c in group[i : i + per_row]).rstrip())
        lines.append("")
    lines.append("Each screen has a headless twin on the command line: vaetui --help")
    lines.append("[dim]escape or ? closes this help[/]")
    return "\n".join(lines)


def _plain(markup: str) -> str:
    from rich.text import Text

    return Text.from_markup(markup).plain


class Help(Static):
    """The keys of the screen it is opened over (from its bindings, so always exact) and the global ones; fits 80x24.

    A box drawn over that screen, not a screen of its own: opening and closing it repaint only the box's
    cells, where pushing a screen repaints the whole terminal and popping it redraws every picture beneath
    (~190 KB at 120x40). It lives in the screen's key line (it is that line's long form) and is hidden,
    not removed, when closed, so opening it again only shows it. It takes no focus (a focus change
    restyles the whole screen and repaints it): while it is open the app hands it every key
    (VaeApp.on_event); escape, ? or q close it, the rest are swallowed, so the screen's own keys wait
    until it is closed. A click on it closes it too.
    """

    CLOSE_KEYS = ("escape", "question_mark", "q")
    DEFAULT_CSS = f"Help {{ width: {HELP_WIDTH}; }}"

    def __init__(self, text: str):
        super().__init__(text, id="help")
        self.text = text
        self._strips: tuple[tuple, list] = ((), [])  # (what they were made for, the box's lines)

    def render_lines(self, crop: Region) -> list[Strip]:
        """The box's lines, border and padding included, made once per text, size and colours: showing the box
        again (Textual clears a widget's line cache when it is shown) reuses them instead of laying out the
        markup and drawing the border again, ~3 ms of the key press that opens it."""
        size = self.outer_size
        key = (self.text, size, self.background_colors, self.visual_style, self.app.theme)
        if self._strips[0] != key:
            self._strips = (key, super().render_lines(size.region))
        lines = self._strips[1][crop.y : crop.bottom]
        if crop.x or crop.width != size.width:
            lines = [line.crop(crop.x, crop.right) for line in lines]
        return lines

    def show(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.update(text)
        self.place()
        self.display = True

    def place(self) -> None:
        """Centre the box on its screen: an absolute offset from the corner of the widget it is mounted
        in (an overlay takes no part in layout)."""
        screen, host = self.screen, self.parent
        w, h = screen.size
        box_h = min(len(self.text.splitlines()) + 2, MIN_HEIGHT - 2, h)
        px, py = host.region.offset if host is not screen else (0, 0)
        self.styles.offset = (max(0, (w - HELP_WIDTH) // 2) - px, max(0, (h - box_h) // 2) - py)

    def key(self, key: str) -> None:
        """A key pressed while it is open."""
        if key in self.CLOSE_KEYS:
            self.close()

    def on_click(self) -> None:
        self.close()

    def close(self) -> None:
        self.display = False


_BOXES: "weakref.WeakKeyDictionary[Screen, Help]" = weakref.WeakKeyDictionary()  # each screen's help box


def help_shown(screen) -> Help | None:
    """The help open over screen, if any (asked on every key press: a lookup, not a walk of the screen's DOM)."""
    box = _BOXES.get(screen)
    return box if box is not None and box.display and box.is_attached else None


def open_help(screen) -> Help | None:
    """Open the help over screen, or close it where it is open; the box, or None when it closed."""
    if (shown := help_shown(screen)) is not None:
        shown.close()
        return None
    text = help_text(screen.app, screen)
    if (box := _BOXES.get(screen)) is not None and box.is_attached:
        box.show(text)
        return box
    # Mounted in the key line, not on the screen: the compositor orders a parent's children counting from
    # the last, so a child added to the screen reorders every widget on it and repaints the whole
    # terminal; in the key line only that line and the box are repainted.
    bars = screen.query(KeyBar)
    host = bars.first() if bars else screen
    box = _BOXES[screen] = Help(text)
    box.display = False
    host.mount(box)
    box.call_after_refresh(box.show, text)  # placed once its host has its region
    return box


class ChartScreen(ModalScreen[None]):
    """One series large, with axes: 1 total, 2 recon, 3 KL, 4 validation; v overlays train vs validation; w sets
    the smoothing (a debiased EMA, restarted at resumes and roll-backs, the raw points faint beneath); x draws
    against step, epoch or wall time."""

    BINDINGS = [
        Binding("escape,f", "close", "close"),
        Binding("1", "pick(0)", "total"), Binding("2", "pick(1)", "recon"),
        Binding("3", "pick(2)", "KL"), Binding("4", "pick(3)", "valid"),
        Binding("v", "overlay", "train vs valid"),
        Binding("w", "smooth", "smoothing"), Binding("x", "x_axis", "x: step/epoch/time"),
        Binding("k", "heat", "KL per dim"),
    ]

    def __init__(self, state: History, which: int = 0, smooth: float = 0.6, x: str = "step", schedule=None):
        super().__init__()
        self.state = state
        self.which = which
        self.overlay = False
        self.smooth, self.x = smooth, x
        self.schedule = schedule
        self.heat = False

    def compose(self) -> ComposeResult:
        from vaetui.ui.widgets.heatmap import HeatMap

        with Vertical(id="chartbox"):
            yield Static("", id="charttitle")
            yield Chart(id="chart")
            yield HeatMap(id="chartheat")

    def on_mount(self) -> None:
        self.redraw()
        self.query_one(Chart).focus()

    def lines(self, label: str, series, colour: str) -> list:
        """A series as the chart draws it: against the chosen x; smoothed over its raw points drawn dim."""
        from vaetui.runs.smoothing import smooth, x_values

        s = self.state
        steps, ys = series.points()
        xs = x_values(steps, self.x, s.steps_per_epoch, s.wall.points())
        if not self.smooth:
            return [(label, xs, ys, colour)]
        return [(f"{label} raw", xs, ys, f"dim {colour}"),
                (f"{label} EMA {self.smooth:g}", xs, smooth(steps, ys, self.smooth, s.breaks), colour)]

    def redraw(self) -> None:
        chart = self.query_one(Chart)
        s = self.state
        self.query_one("#chart").display = not self.heat
        self.query_one("#chartheat").display = self.heat
        if self.heat:
            self.query_one("#charttitle", Static).update(
                "[b]KL per latent dimension over the run[/]  [dim]k back to the curves · esc close[/]")
            heat = self.query_one("#chartheat")
            self.call_after_refresh(heat.set_columns, s.kl_dims.steps(), s.kl_dims.matrix(), self.schedule,
                                    s.total_steps)
            return
        if self.overlay:
            lines = self.lines("train (per epoch)", s.train_epoch, "cyan") + \
                self.lines("validation", s.series["valid"], "magenta")
            title = "train vs validation loss per epoch"
        else:
            key = SERIES[self.which]
            lines = self.lines(SERIES_LABELS[key], s.series[key], "cyan")
            title = f"{SERIES_LABELS[key]} per image"
        smoothing = f"EMA {self.smooth:g}" if self.smooth else "raw"
        self.query_one("#charttitle", Static).update(
            f"[b]{title}[/]  {smoothing} · x {self.x}  [dim]1-4 series · v train vs valid · w smoothing · "
            f"x step/epoch/time · l log y · esc close[/]")
        chart.x_label = X_LABELS[self.x]
        chart.set_series(lines)

    def action_pick(self, which: int) -> None:
        self.which, self.overlay, self.heat = which, False, False
        self.redraw()

    def action_smooth(self) -> None:
        self.smooth = next_of(SMOOTH_STEPS, self.smooth)
        self.redraw()

    def action_heat(self) -> None:
        self.heat = not self.heat
        self.redraw()

    def action_x_axis(self) -> None:
        self.x = next_of(X_AXES, self.x)
        self.redraw()

    def action_overlay(self) -> None:
        self.overlay = not self.overlay
        self.redraw()

    def action_close(self) -> None:
        self.dismiss(None)


class TooSmall(Screen[None]):
    """Shown instead of a broken layout when the terminal is smaller than 80x24."""

    BINDINGS = [Binding("q,ctrl+c", "app.quit", "quit", show=False)]

    def compose(self) -> ComposeResult:
        yield Static("", id="toosmall")

    def on_mount(self) -> None:
        self.update_message()

    def on_resize(self, event) -> None:
        self.update_message(event.size)

    def update_message(self, size=None) -> None:
        w, h = size or self.app.size
        self.query_one("#toosmall", Static).update(
            f"terminal too small (needs {MIN_WIDTH}x{MIN_HEIGHT}, this is {w}x{h}): enlarge it, or q to quit")
