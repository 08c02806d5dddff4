"""What goes over the wire: a new picture sends only what changed, within a byte budget; idle is silent;
a key typed at launch is not lost."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from textual.app import App

from fake_runs import make_finished_run
from ptys import run_on_pty, typed_at_launch
from vaetui.ui.widgets import picture
from vaetui.ui.widgets.picture import HalfBlockImage

W, H = 40, 12  # cells: a 40x24-pixel picture drawn 1:1


def noise(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (2 * H, W, 3), dtype=np.uint8))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_widget(colors, steps):
    """Mount a HalfBlockImage, then run steps(widget, sent, clock): sent collects each refreshed Region."""

    class One(App):
        CSS = f"HalfBlockImage {{ width: {W}; height: {H}; }}"

        def compose(self):
            yield HalfBlockImage(None)

    async def scenario():
        app = One()
        async with app.run_test(size=(60, 20)) as pilot:
            widget = app.query_one(HalfBlockImage)
            widget.colors = colors
            sent = []
            real = widget.refresh

            def recording(*regions, **kw):
                sent.extend(regions)
                return real(*regions, **kw)

            widget.refresh = recording
            await steps(widget, sent, pilot)

    asyncio.run(scenario())


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(picture, "clock", c)
    return c


def test_a_new_picture_sends_only_the_cells_that_changed(clock):
    async def steps(widget, sent, pilot):
        first = noise(0)
        widget.image = first
        await pilot.pause()
        sent.clear()
        px = np.asarray(first).copy()
        px[8:12, 10:16] = 255 - px[8:12, 10:16]  # pixel rows 8-11 = cell rows 4-5, columns 10-15
        widget.image = Image.fromarray(px)
        while widget._pending:
            clock.now += picture.TICK_S
            widget._send()
        assert {(r.y, r.x, r.width, r.height) for r in sent} == {(4, 10, 6, 1), (5, 10, 6, 1)}
        assert np.array_equal(widget._shown, widget._target)

    run_widget("truecolor", steps)


@pytest.mark.parametrize("colors", ["truecolor", "256"])
def test_changes_the_eye_cannot_tell_are_not_resent(clock, colors):
    async def steps(widget, sent, pilot):
        first = np.asarray(noise(1)).astype(int)
        first = np.clip(first, 40, 215)  # away from the palette's coarse ends
        widget.image = Image.fromarray(first.astype(np.uint8))
        await pilot.pause()
        sent.clear()
        widget.image = Image.fromarray((first + 3).astype(np.uint8))  # +3 of 255 on every channel
        if colors == "truecolor":
            assert sent == []
        else:  # the palette: a code changes only where +3 crosses to another of its levels, never everywhere
            assert len(sent) < H

    run_widget(colors, steps)


@pytest.mark.parametrize("colors", ["truecolor", "256"])
def test_a_new_picture_trickles_out_within_the_byte_budget(clock, colors):
    async def steps(widget, sent, pilot):
        widget.image = noise(2)
        await pilot.pause()
        sent.clear()
        per_second, seconds = [], 0
        widget.image = noise(3)  # every cell differs: the first row goes at once, the rest on the ticks
        while widget._pending and seconds < 60:
            before = len(sent) if seconds else 0
            for _ in range(4):  # one second of ticks
                clock.now += picture.TICK_S
                widget._send()
            per_second.append(sum(r.width for r in sent[before:]) * picture.CELL_BYTES[colors])
            seconds += 1
        assert not widget._pending and np.array_equal(widget._shown, widget._target)
        row = W * picture.CELL_BYTES[colors]
        assert max(per_second) <= picture.BYTES_PER_S + row  # a whole row may overdraw the budget once
        assert sum(per_second) == H * row  # every cell exactly once
        assert len(per_second) >= H * row // (picture.BYTES_PER_S + row)

    run_widget(colors, steps)


def test_pictures_faster_than_the_wipe_never_starve_the_lower_rows(clock):
    async def steps(widget, sent, pilot):
        widget.image = noise(4)
        await pilot.pause()
        sent.clear()
        seen_rows = set()
        for k in range(80):  # a new picture every tick (20 s): faster than any wipe within the budget
            widget.image = noise(10 + k)
            clock.now += picture.TICK_S
            widget._send()
            seen_rows |= {r.y for r in sent}
        assert seen_rows == set(range(H))

    run_widget("truecolor", steps)


def vaetui(*args) -> list[str]:
    return [str(Path(sys.executable).with_name("vaetui")), *args]


def terminal_answers(new: bytes) -> bytes:
    return b"\x1b[?62;22c" if b"\x1b[c" in new else b""


def test_a_finished_run_on_screen_costs_no_bytes(tmp_path):
    make_finished_run(tmp_path / "runs")
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    log = []
    run_on_pty(vaetui("monitor", "faces-demo", "--runs-dir", str(tmp_path / "runs")), env, terminal_answers,
               seconds=10, log=log)
    drawn = [t for t, chunk in log if b"faces-demo" in chunk]
    assert drawn, "the monitor never drew the run"
    settled = drawn[0] + 4  # the first frame, the picture, the log's first lines
    assert sum(len(chunk) for t, chunk in log if t > settled) == 0, [c[:80] for t, c in log if t > settled]


def test_the_help_repaints_its_box_not_the_screen(tmp_path):
    """Opening the help over a monitor full of pictures, then closing it, sends the box's cells and the
    cells beneath it: under half a frame (~0.37), where a screen of its own costs 1.8 frames. Twice: the
    second time, nothing beneath the box is rendered while it is open (vaetui.ui.patches.occlusion), and its close
    must still repaint what it covered."""
    make_finished_run(tmp_path / "runs")
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    log = []
    run_on_pty(vaetui("monitor", "faces-demo", "--runs-dir", str(tmp_path / "runs")), env, terminal_answers,
               seconds=16, log=log, after=b"faces-demo", typed=[(6.0, b"?"), (8.0, b"?"), (10.0, b"?"), (12.0, b"?")])
    start = next(t for t, chunk in log if b"faces-demo" in chunk)
    frame = sum(len(chunk) for t, chunk in log if t < start + 5.5)  # the first frame, the pictures, the log

    def between(a, b):
        return b"".join(chunk for t, chunk in log if start + a <= t < start + b)

    assert frame > 50_000, frame  # pictures on screen: a whole repaint would be costly
    for opened, closed in ((between(6, 8), between(8, 10)), (between(10, 12), between(12, 16))):
        assert b"escape or ? closes this help" in re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", opened)  # the text,
        # between the cursor moves and colours that split a line where the widgets beneath it meet
        assert len(opened) + len(closed) < 0.5 * frame, (len(opened), len(closed), frame)  # own screen: 1.8 frames
        assert len(closed) > 0.5 * len(opened), "the help was not closed, or what it covered was not repainted"
        assert b"closes this help" not in closed


@pytest.mark.parametrize("argv", [[], ["monitor", "faces-demo"]])
def test_q_typed_at_launch_quits(tmp_path, argv):
    make_finished_run(tmp_path / "runs")
    env = {**os.environ, "TERM": "xterm-256color"}
    status, out = typed_at_launch(vaetui(*argv, "--runs-dir", str(tmp_path / "runs")), env, b"q", timeout=60)
    assert status == 0, out[-300:]


# ---------------------------------------------------------------------- partial updates: only their cells


def written_updates(app_class, size, steps):
    """Run app_class headless; steps(app, pilot) changes it. Returns what Textual would write to the terminal
    for each partial update after the first frame (headless apps write nothing; the update is rendered here)."""
    from rich.console import Console
    from textual import _compositor

    from vaetui.ui.patches import wire

    assert wire.install()  # as VaeApp does (on the Textual it was written against)
    written: list[str] = []
    console = Console(force_terminal=True, color_system="truecolor", width=size[0])
    real = _compositor.Compositor.render_partial_update

    def recording(self):
        update = real(self)
        if update is not None and recording.on:
            written.append(update.render_segments(console))
        return update

    recording.on = False

    async def scenario():
        app = app_class()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            recording.on = True
            await steps(app, pilot)
            await pilot.pause()

    _compositor.Compositor.render_partial_update = recording
    try:
        asyncio.run(scenario())
    finally:
        _compositor.Compositor.render_partial_update = real
    return written


def cells_at(data: str) -> list[tuple[int, int, str]]:
    """(row, column, text without escapes) of each cursor move in terminal output, 1-based."""
    return [(int(m[0]), int(m[1]), re.sub(r"\x1b\[[0-9;]*m", "", m[2]))
            for m in re.findall(r"\x1b\[(\d+);(\d+)H((?:(?!\x1b\[\d+;\d+H)[^\n])*)", data)]


def test_a_region_refreshed_at_the_right_of_a_wide_widget_sends_only_its_cells():
    from textual.geometry import Region
    from textual.widgets import Static

    class Wide(App):
        CSS = "Static { width: 100; height: 2; }"

        def compose(self):
            yield Static("a" * 90 + "0123456789\n" + "b" * 100)

    async def steps(app, pilot):
        app.query_one(Static).refresh(Region(92, 1, 3, 1))

    assert cells_at("".join(written_updates(Wide, (100, 4), steps))) == [(2, 93, "bbb")]


def test_a_quiet_line_sends_the_characters_that_changed_not_the_line():
    from vaetui.ui.widgets.text import Quiet

    line = "[b]run[/]  [green]● running[/]  epoch 3/10  step {}  elapsed 4s"

    class Status(App):
        CSS = "Quiet { width: 100; height: 1; padding: 0 1; }"

        def compose(self):
            yield Quiet(id="status")

    async def steps(app, pilot):
        quiet = app.query_one(Quiet)
        quiet.set(line.format(41))
        await pilot.pause()
        quiet.set(line.format(42))

    sent = cells_at("".join(written_updates(Status, (100, 3), steps)[-1:]))
    assert sent and all(text.startswith("2") and len(text.strip()) <= 2 for _, _, text in sent), sent
    assert sent[0][1] == 1 + 1 + len("run  ● running  epoch 3/10  step 4")  # the padding, then the text


def test_a_quiet_text_that_wraps_or_holds_wide_characters_is_sent_whole():
    from vaetui.ui.widgets.text import Quiet, _cells

    class Narrow(App):
        CSS = "Quiet { width: 12; height: 2; }"

        def compose(self):
            yield Quiet(id="q")

    async def check():
        app = Narrow()
        async with app.run_test(size=(20, 4)):
            quiet = app.query_one(Quiet)
            quiet.set("short 1")
            def changed(old, new):
                return quiet._changed(_cells(old), _cells(new))

            assert changed("short 1", "short 2") == [Region(6, 0, 1, 1)]
            assert changed("a line far too long 1", "a line far too long 2") is None  # it wraps
            assert changed("名前 1", "名前 2") is None  # two cells a character

    from textual.geometry import Region

    asyncio.run(check())


def test_a_sparkline_keeps_its_columns_while_a_run_goes_on_and_sends_only_the_newest():
    from vaetui.ui.widgets.spark import Spark, run_columns

    xs = list(range(1, 200))
    ys = [100.0 if x <= 8 else 50.0 + x % 7 for x in xs]  # the first steps far above, then inside a steady range
    ys[150:152] = [53.0, 53.0]  # the newest column moves, inside the range
    width = 20
    before = run_columns(xs[:150], ys[:150], width)
    after = run_columns(xs[:152], ys[:152], width)
    assert len(before) == len(after) == 19 and after[:-1] == before[:-1] and after[-1] != before[-1]
    assert len(run_columns(xs, ys, width)) <= width

    class One(App):
        CSS = f"Spark {{ width: {width}; height: 4; }}"

        def compose(self):
            yield Spark(id="s")

    async def steps(app, pilot):
        spark = app.query_one(Spark)
        spark.set(xs[:150], ys[:150])
        await pilot.pause()
        spark.set(xs[:152], ys[:152])

    written = written_updates(One, (30, 6), steps)
    last = cells_at(written[-1])
    assert last, "the new points were not drawn"
    assert {col for _, col, _ in last} == {19}  # the newest column (1-based), nothing left of it
    assert all(len(text) == 1 for _, _, text in last)


def test_a_loss_creeping_down_does_not_move_the_sparkline_s_range_at_each_new_low():
    from vaetui.ui.widgets.spark import sticky_range

    current = sticky_range(None, 10.0, 20.0)
    moves = 0
    for k in range(1, 21):  # a new low every point, 0.1 lower each time
        new = sticky_range(current, 10.0 - 0.1 * k, 20.0)
        moves += new != current
        current = new
    assert moves <= 2
    assert current[0] <= 8.0 and current[1] == 20.0


def test_the_event_log_follows_new_lines_in_the_same_frame_and_stays_where_a_person_scrolled():
    from vaetui.ui.widgets.text import EventLog

    class Log(App):
        CSS = "EventLog { height: 4; }"

        def compose(self):
            yield EventLog(max_lines=100, wrap=False, markup=False)

    async def check():
        app = Log()
        async with app.run_test(size=(40, 6)) as pilot:
            log = app.query_one(EventLog)
            shown = log.show([f"line {i}" for i in range(10)], 10, 0)
            assert shown == 10 and log.scroll_y == log.max_scroll_y == 6  # at once, not a frame later
            await pilot.pause()
            log.scroll_to(y=0, animate=False, immediate=True)
            log.show([f"line {i}" for i in range(12)], 12, shown)
            await pilot.pause()
            assert log.scroll_y == 0

    asyncio.run(check())
