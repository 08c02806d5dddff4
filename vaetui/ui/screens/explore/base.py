"""The explore screens' base: a title line, one large picture, an info line.

A screen's `compute(model, config)` (the figure) and `view(figure)` (what is drawn around
it) both run in a worker thread, and a new request cancels the one in flight; the UI
thread only shows the finished picture. Any failure is shown, and "computing…" cleared.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header
from textual.worker import get_current_worker

from vaetui.errors import VaeError
from vaetui.ui.widgets.picture import fit_picture, picture_class
from vaetui.ui.widgets.text import Quiet
from vaetui.ui.widgets.keybar import KeyBar


class ExploreScreen(Screen[None]):
    """Base of the explore screens; subclasses give compute() and, when they draw around it, view()."""

    BINDINGS = [Binding("s", "save", "save PNG"), Binding("enter", "zoom", "zoom"),
                Binding("escape", "back", "back", show=False)]
    name_ = "explore"
    needs_model = True

    def __init__(self, run_name: str, checkpoint: str | None = None):
        super().__init__()
        self.run_name = run_name
        self.checkpoint = checkpoint
        self.figure = None
        self.shown = None  # the picture on screen (figure plus what view() adds)
        self.checkpoint_path: Path | None = None
        self.fitted = None  # the layout the figure was computed for (see layout_for)
        self.zoomed = False
        self.image_size = (64, 64)  # the run's, read at mount

    def compose(self) -> ComposeResult:
        yield Header()
        yield Quiet("", id="ex-title")
        with Vertical(id="ex-body"):
            yield picture_class(self.app.image)(None, id="ex-picture")
        yield Quiet("", id="ex-info")
        yield KeyBar()

    def on_mount(self) -> None:
        self.title, self.sub_title = "vaetui", f"{self.name_} · {self.run_name}"
        try:
            self.image_size = self.app.store.open(self.run_name).config().data.size
        except VaeError:
            pass
        self.call_after_refresh(self.request)  # after the layout: the picture area's size is known

    def on_resize(self) -> None:
        if self.figure is not None and self.layout_for(*self.box()) != self.fitted:
            self.request()  # more (or less) room: a figure laid out for it
        else:
            self._show()

    def box(self) -> tuple[int, int]:
        """The picture area in cells."""
        body = self.query_one("#ex-body")
        return body.size.width, body.size.height

    def layout_for(self, cols: int, rows: int):
        """How a screen lays out its figure for a picture area of this size (None: it does not adapt)."""
        return None

    def zoom_view(self, figure):
        """The one image `enter` zooms to the whole area (None: nothing to zoom here)."""
        return None

    def action_back(self) -> None:
        """To the screen this one was opened from (a study, the runs list); zoomed, first out of the zoom."""
        if self.zoomed:
            self.action_zoom()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_zoom(self) -> None:
        self.zoomed = not self.zoomed
        if self.zoomed and self.figure is not None and self.zoom_view(self.figure) is None:
            self.zoomed = False
            self.notify("nothing to zoom on this screen", severity="warning")
            return
        self.redraw()

    def title_text(self) -> str:
        return ""

    def headless(self) -> list[str] | None:
        """The `vaetui` arguments that write this screen's picture to a file (None: no twin yet)."""
        return None

    def checkpoint_flag(self) -> list[str]:
        return ["--checkpoint", self.checkpoint] if self.checkpoint else []

    def info_text(self) -> str:
        return ""

    def compute(self, model, config):
        raise NotImplementedError  # every screen defines it

    def view(self, figure):
        """The picture drawn for a figure (in the worker); by default the figure itself."""
        return figure.image

    def request(self) -> None:
        """Recompute the figure for the current settings (cancels a computation in flight)."""
        self.fitted = self.layout_for(*self.box())
        self.query_one("#ex-title", Quiet).set(self.title_text() + "  [dim]computing…[/]")
        self._compute(full=True)

    def redraw(self) -> None:
        """Recompose the picture around the current figure (a frame, a selection): no model work."""
        if self.figure is not None:
            self._compute(full=False)

    @work(thread=True, exclusive=True, group="explore", exit_on_error=False)
    def _compute(self, full: bool) -> None:
        try:
            if not full:
                figure, path = self.figure, self.checkpoint_path
            elif self.needs_model:
                loaded = self.app.models.get(self.app.store, self.run_name, self.checkpoint)
                figure, path = self.compute(loaded.model, loaded.config), loaded.path
            else:
                run = self.app.store.open(self.run_name)
                figure, path = self.compute(None, run.config()), run.config_path
            picture = (self.zoom_view(figure) if self.zoomed else None) or self.view(figure)
        except Exception as exc:  # any failure is shown, and "computing…" cleared: the screen never hangs
            message = str(exc) if isinstance(exc, VaeError) else f"{type(exc).__name__}: {exc}"
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self._failed, message.splitlines()[0] if message else type(exc).__name__)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._done, figure, picture, path)

    def _failed(self, message: str) -> None:
        self.query_one("#ex-title", Quiet).set(self.title_text() + f"  [red]{message}[/]")
        self.notify(message, severity="error")

    def _done(self, figure, picture, path) -> None:
        self.figure, self.shown, self.checkpoint_path = figure, picture, path
        source = f"  [dim]{path.name}[/]" if self.needs_model and path is not None else ""
        self.query_one("#ex-title", Quiet).set(self.title_text() + source)
        self.query_one("#ex-info", Quiet).set(self.info_text())
        self._show()

    def _show(self) -> None:
        body = self.query_one("#ex-body")
        fit_picture(self.query_one("#ex-picture"), self.shown, body.size.width, body.size.height)

    def default_filename(self) -> str:
        return f"{self.name_}-{self.run_name}.png"

    def action_save(self) -> None:
        if self.figure is None:
            return
        from vaetui.pictures.imaging import save_image

        path = save_image(self.figure.image, Path.cwd() / self.default_filename())
        self.notify(f"saved {path}")
