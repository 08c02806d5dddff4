"""Small modal screens: confirm, help, the full chart, terminal too small."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static

from vaetui.history import SERIES, SERIES_LABELS, History
from vaetui.ui.widgets.chart import Chart

MIN_WIDTH, MIN_HEIGHT = 80, 24


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


HELP = """\
[b]vaetui[/] — train and explore variational autoencoders
[b]Anywhere[/]
  [b]t[/] train: the monitor (or a new run)   [b]u[/] runs   [b]n[/] new run
  [b]g[/] generate [b]i[/] interpolate [b]r[/] reconstruct [b]z[/] latent [b]d[/] data (highlighted run)
  [b]?[/] this help   [b]q[/] quit (asks first while training)
[b]Monitor[/]
  [b]p[/] pause / resume    [b]s[/] stop (saves a checkpoint)
  [b]c[/] checkpoint now    [b]f[/] full chart (1-4 series, l log y)
  [b]←/→ home/end[/] step through the image snapshots
[b]Runs[/]  [b]enter[/] monitor [b]c[/] continue [b]o[/] sort [b]m[/] rename [b]x[/] delete
  [b]space[/] mark runs, [b]v[/] compare them (curves, numbers, reconstructions)
[b]Explore[/] [b]s[/] save PNG · generate: [b]r[/] re-roll [b][ ][/] seed [b]- +[/] temperature
  interpolate: [b]←/→[/] frames [b]m[/] lerp/slerp [b]x[/] extrapolate [b]a[/] GIF
  reconstruct: [b]←/→[/] pages [b]v[/] valid/test [b]c[/] checkpoints [b]2[/] compare a run
  data: [b]arrows[/] select [b]space[/] pick two to blend [b]r[/] re-roll
  latent: [b]↑/↓[/] dimension [b][ ][/] image [b]a[/] attribute [b]- +[/] amount [b]p[/] scatter
[b]New run[/]  tab between fields; [b]ctrl+s[/] or Start to begin
Headless: vaetui train runs monitor sample reconstruct interpolate eval plot
[dim]escape or ? closes this help[/]"""


class Help(ModalScreen[None]):
    """The keys, on one screen that fits 80x24."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss_help", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(HELP)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class ChartScreen(ModalScreen[None]):
    """One series large, with axes: 1 total, 2 recon, 3 KL, 4 validation; v overlays train vs validation."""

    BINDINGS = [
        Binding("escape,f", "close", "close"),
        Binding("1", "pick(0)", "total"), Binding("2", "pick(1)", "recon"),
        Binding("3", "pick(2)", "KL"), Binding("4", "pick(3)", "valid"),
        Binding("v", "overlay", "train vs valid"),
    ]

    def __init__(self, state: History, which: int = 0):
        super().__init__()
        self.state = state
        self.which = which
        self.overlay = False

    def compose(self) -> ComposeResult:
        with Vertical(id="chartbox"):
            yield Static("", id="charttitle")
            yield Chart(id="chart")

    def on_mount(self) -> None:
        self.redraw()
        self.query_one(Chart).focus()

    def redraw(self) -> None:
        chart = self.query_one(Chart)
        s = self.state
        if self.overlay:
            lines = [("train (per epoch)", *s.train_epoch.points(), "cyan"),
                     ("validation", *s.series["valid"].points(), "magenta")]
            title = "train vs validation loss per epoch"
        else:
            key = SERIES[self.which]
            series = s.series[key]
            lines = [(SERIES_LABELS[key], *series.points(), "cyan")]
            title = f"{SERIES_LABELS[key]} per image"
        self.query_one("#charttitle", Static).update(
            f"[b]{title}[/]  [dim]1-4 series · v train vs valid · l log y · esc close[/]")
        chart.set_series(lines)

    def action_pick(self, which: int) -> None:
        self.which, self.overlay = which, False
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
