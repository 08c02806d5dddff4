"""A widget hidden behind another, or outside an update, is not rendered; what is drawn stays the same."""

from __future__ import annotations

import asyncio
import contextlib

from textual import _compositor
from textual.app import App
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Static

from vaetui.ui.patches import occlusion

TEXTUAL_GET_RENDERS = _compositor.Compositor._get_renders  # before anything installs (VaeApp does, once)


class Counted(Static):
    def render_lines(self, crop):
        self.app.rendered.append(self.id)
        return super().render_lines(crop)


class Cached(Counted):
    """Its lines made once (as the help's are: vaetui.ui.screens.dialogs.Help), so that showing it again asks
    nothing of the compositor."""

    lines = None

    def render_lines(self, crop):
        if self.lines is None:
            self.lines = super().render_lines(Region(0, 0, *self.outer_size))
        self.app.rendered.append(self.id)
        return [line.crop(crop.x, crop.right) for line in self.lines[crop.y : crop.bottom]]


class Foot(Widget):
    def render(self):
        return "the key line"


class Stack(App):
    """Two lines of text, a tall widget beneath, a box that opens over the middle of it."""

    CSS = """
    #top { height: 1; } #left { width: 30; height: 8; } #right { width: 30; height: 8; }
    #body { layout: horizontal; height: 8; } #foot { dock: bottom; height: 1; }
    #box { position: absolute; overlay: screen; offset: 2 -9; width: 50; height: 5; background: red; }
    """

    def __init__(self, cached: bool = False):
        super().__init__()
        self.rendered: list[str] = []
        self.cached = cached

    def compose(self):
        from textual.containers import Container

        yield Counted("a title line", id="top")
        with Container(id="body"):
            yield Counted("left\n" * 8, id="left")
            yield Counted("right " * 40, id="right")
        with Foot(id="foot"):  # the box lives in the key line, as the help does (vaetui.ui.screens.dialogs)
            box = (Cached if self.cached else Counted)("a box over the others", id="box")
            box.display = False
            yield box


def screen_text(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def run(steps, cached: bool = False):
    async def scenario():
        app = Stack(cached)
        async with app.run_test(size=(64, 12)) as pilot:
            await pilot.pause()
            await steps(app, pilot)

    asyncio.run(scenario())


def test_the_widgets_behind_a_box_are_not_rendered_and_the_screen_is_the_same():
    assert occlusion.install()

    async def steps(app, pilot):
        box = app.query_one("#box")
        box.display = True
        await pilot.pause()
        app.rendered.clear()
        box.update("a box over the others, changed")  # an update inside the box only
        await pilot.pause()
        assert app.rendered == ["box"]  # not #left and #right beneath it, not the title or the key line
        ours = screen_text(app)
        _compositor.Compositor._get_renders = TEXTUAL_GET_RENDERS
        try:
            assert screen_text(app) == ours  # Textual's own composition: every cell the same
        finally:
            _compositor.Compositor._get_renders = occlusion.get_renders
        assert "a box over the others, changed" in "".join(ours)
        assert "left" in ours[1] and "right" in ours[1] and "left" in ours[7]  # above and below the box: drawn

    run(steps)


def test_a_widget_outside_an_update_is_not_rendered():
    assert occlusion.install()

    async def steps(app, pilot):
        app.rendered.clear()
        app.query_one("#right").refresh(Region(0, 0, 3, 1))
        await pilot.pause()
        assert app.rendered == ["right"]  # Textual rendered every widget whose clip (the screen) overlaps

    run(steps)


@contextlib.contextmanager
def partial_updates():
    """Every partial update the compositor renders meanwhile, in a list."""
    updates = []
    real = _compositor.Compositor.render_partial_update

    def recording(self):
        update = real(self)
        if update is not None:
            updates.append(update)
        return update

    _compositor.Compositor.render_partial_update = recording
    try:
        yield updates
    finally:
        _compositor.Compositor.render_partial_update = real


def written(update) -> dict[tuple[int, int], str]:
    """The cells a partial update writes: {(column, row): character}."""
    cells = {}
    for y, x1, x2 in update.spans:
        for end, (x, strip) in zip(update.chop_ends[y], update.chops[y].items()):
            if strip is None or x >= x2 or end <= x1:
                continue
            for i, ch in enumerate(strip.text):
                if x1 <= x + i < x2:
                    cells[(x + i, y)] = ch
    return cells


def test_a_partial_update_renders_only_the_widgets_whose_cells_it_writes():
    """A one-line change at the top and one cell at the bottom of the right column: Textual rendered everything
    in the rectangle around them (the left column, the container); the cells written are the screen's."""
    assert occlusion.install()

    async def steps(app, pilot):
        await pilot.pause()
        app.rendered.clear()
        with partial_updates() as updates:
            app.query_one("#top").update("a new title line")
            app.query_one("#right").refresh(Region(2, 7, 3, 1))
            await pilot.pause()
        assert sorted(app.rendered) == ["right", "top"]
        cells = {k: v for update in updates for k, v in written(update).items()}
        screen = screen_text(app)
        assert {(32, 8), (33, 8), (34, 8)} <= set(cells) and (0, 0) in cells and not any(y in range(1, 8) for _, y in cells)
        assert all(screen[y][x] == ch for (x, y), ch in cells.items())
        assert screen[0].startswith("a new title line")

    run(steps)


def test_a_box_closed_after_nothing_beneath_it_was_rendered_repaints_what_it_covered():
    """The box opens (only it is rendered), closes, opens and closes again: each close repaints the cells it
    covered (Textual's reflow left its map marked stale, and without the renders beneath the box a region
    question after the box was hidden rebuilt the map without it: the second close changed nothing)."""
    assert occlusion.install()
    async def steps(app, pilot):
        box = app.query_one("#box")
        with partial_updates() as updates:
            for _ in range(2):
                for shown in (True, False):
                    updates.clear()
                    box.display = shown  # (hiding it asks for its size: the region question)
                    await pilot.pause()
                    # (column, row) of each cell an update repainted
                    painted = {(x, y) for update in updates for y, x1, x2 in update.spans for x in range(x1, x2 + 1)}
                    area = {(x, y) for x in range(2, 52) for y in range(2, 7)}  # the box's cells
                    assert area <= painted, f"display={shown}: {len(area - painted)} of the box's cells not repainted"
            # (rendering the screen here, between the steps, would ask the region question with the box shown)
            assert "a box over the others" not in "".join(screen_text(app))

    run(steps, cached=True)
