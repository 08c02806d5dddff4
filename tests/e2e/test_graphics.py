"""--image sixel|kitty end to end: the real vaetui on a pty whose 'terminal' answers as a sixel or a kitty one would.

The answers are the emulators' own: a DA1 reply listing 4 (sixel), the kitty graphics
protocol's OK to its query, the cell size in pixels. Inside tmux without passthrough,
--image auto must not ask anything.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from fake_runs import make_finished_run
from ptys import run_on_pty

SIXEL_DA1 = b"\x1b[?62;4;22c"  # xterm -ti vt340: sixel graphics listed
PLAIN_DA1 = b"\x1b[?62;22c"


def terminal(kind: str):
    """A scripted terminal: 'sixel', 'kitty' or 'plain' (answers DA1 and the cell size; kitty also its query)."""
    def answer(new: bytes) -> bytes:
        reply = b""
        if b"\x1b[c" in new:
            reply += SIXEL_DA1 if kind == "sixel" else PLAIN_DA1
        m = re.search(rb"\x1b_Gi=(\d+),[^;]*;AAAA\x1b\\", new)
        if m and kind == "kitty":
            reply += b"\x1b_Gi=" + m.group(1) + b";OK\x1b\\"
        if b"\x1b[16t" in new:
            reply += b"\x1b[6;20;10t"  # cells of 10x20 pixels
        return reply

    return answer


@pytest.fixture
def run_with_pictures(tmp_path):
    make_finished_run(tmp_path / "runs")
    return tmp_path / "runs"


def vaetui(*args) -> list[str]:
    return [str(Path(sys.executable).with_name("vaetui")), *args]


ENV = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}


def test_sixel_pictures_reach_a_sixel_terminal(run_with_pictures):
    out = run_on_pty(vaetui("monitor", "faces-demo", "--runs-dir", str(run_with_pictures), "--image", "sixel"),
                     {k: v for k, v in ENV.items() if k != "TMUX"}, terminal("sixel"))
    assert b"\x1b[c" in out  # it asked
    assert re.search(rb"\x1bP[0-9;]*q", out), "no sixel image was sent"  # DCS ... q: sixel data
    assert b"faces-demo" in out


def test_kitty_pictures_reach_a_kitty_terminal(run_with_pictures):
    out = run_on_pty(vaetui("monitor", "faces-demo", "--runs-dir", str(run_with_pictures), "--image", "kitty"),
                     {k: v for k, v in ENV.items() if k != "TMUX"}, terminal("kitty"))
    assert b"a=q" in out  # it asked (the protocol's query)
    # Then it transmitted a picture (PNG data, f=100, in chunks: m=1, the last m=0; a=t is the default) and placed it.
    sent = re.search(rb"\x1b_Gi=(\d+),m=0,f=100", out)
    assert sent and re.search(rb"\x1b_Ga=p,i=" + sent.group(1), out), "no picture went out by the kitty protocol"


def test_auto_inside_tmux_without_passthrough_asks_nothing(run_with_pictures):
    env = {**ENV, "TMUX": "/tmp/not-a-real-tmux,1,0"}  # tmux show-options then fails: no passthrough
    out = run_on_pty(vaetui("monitor", "faces-demo", "--runs-dir", str(run_with_pictures), "--image", "auto"),
                     env, terminal("sixel"), seconds=8)
    assert b"faces-demo" in out
    assert b"\x1b_G" not in out and b"\x1b[16t" not in out  # no graphics probe went to the terminal
    assert not re.search(rb"\x1bP[0-9;]*q", out)  # and no sixel: half blocks
    assert "▀".encode() in out
