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
    cells beneath it: under half a frame (~0.37), where a screen of its own costs 1.8 frames."""
    make_finished_run(tmp_path / "runs")
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    log = []
    run_on_pty(vaetui("monitor", "faces-demo", "--runs-dir", str(tmp_path / "runs")), env, terminal_answers,
               seconds=12, log=log, after=b"faces-demo", typed=[(6.0, b"?"), (9.0, b"?")])
    start = next(t for t, chunk in log if b"faces-demo" in chunk)
    frame = sum(len(chunk) for t, chunk in log if t < start + 5.5)  # the first frame, the pictures, the log
    opened = b"".join(chunk for t, chunk in log if start + 6 <= t < start + 9)
    closed = sum(len(chunk) for t, chunk in log if t >= start + 9)
    assert b"escape or ? closes this help" in re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", opened)  # the text, between
    # the cursor moves and colours that split a line where the widgets beneath it meet
    assert frame > 50_000, frame  # pictures on screen: a whole repaint would be costly
    assert len(opened) + closed < 0.5 * frame, (len(opened), closed, frame)  # a screen of its own: 1.8 frames
    assert closed > 0, "the help was not closed"


@pytest.mark.parametrize("argv", [[], ["monitor", "faces-demo"]])
def test_q_typed_at_launch_quits(tmp_path, argv):
    make_finished_run(tmp_path / "runs")
    env = {**os.environ, "TERM": "xterm-256color"}
    status, out = typed_at_launch(vaetui(*argv, "--runs-dir", str(tmp_path / "runs")), env, b"q", timeout=60)
    assert status == 0, out[-300:]
