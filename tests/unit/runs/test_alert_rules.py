"""What raises an alert, when silence is one, and the bytes a terminal is sent."""

from __future__ import annotations

from vaetui.runs.alerts import Alert, QuietWatch, alert_of, terminal_bytes, tmux_command
from vaetui.runs.events import EpochEvent, FailedEvent, FinishedEvent, WarningEvent


def test_which_events_raise_alerts():
    assert alert_of(FinishedEvent(step=9, epoch=1, reason="completed"), "r").kind == "finished"
    failed = alert_of(FailedEvent(step=3, error="out of memory"), "r")
    assert failed.kind == "failed" and "out of memory" in failed.message
    assert alert_of(WarningEvent(step=4, message="rolled back", cause="rollback"), "r").kind == "rollback"
    assert alert_of(WarningEvent(step=4, message="collapsed", cause="collapse"), "r").kind == "collapse"
    assert alert_of(WarningEvent(step=4, message="skipped a step", cause="nonfinite"), "r") is None
    assert alert_of(EpochEvent(step=4, epoch=1, train_loss=1, valid_loss=1, train_recon=1, train_kl=0, best=True),
                    "r") is None


def test_silence_is_news_once_and_only_while_training():
    q = QuietWatch(after=60, now=0.0)
    assert q.check("r", 5, expecting=True, now=59.0) is None
    alert = q.check("r", 5, expecting=True, now=61.0)
    assert alert.kind == "quiet" and "61 s" in alert.message
    assert q.check("r", 5, expecting=True, now=200.0) is None  # said once
    q.heard(now=210.0)
    assert q.check("r", 6, expecting=True, now=260.0) is None
    assert q.check("r", 6, expecting=True, now=275.0).kind == "quiet"  # spoke, then quiet again: said again
    q = QuietWatch(after=60, now=0.0)
    assert q.check("r", 5, expecting=False, now=500.0) is None  # paused: silence expected
    assert q.check("r", 5, expecting=True, now=550.0) is None  # the clock starts when it should talk again


A = Alert("failed", "run1", 7, "failed at step 7: boom\x1b]0;evil\x07")


def test_the_bell_always_and_a_desktop_notification_where_the_terminal_shows_one():
    assert terminal_bytes(A, {"TERM": "xterm-256color"}) == "\a"
    iterm = terminal_bytes(A, {"TERM_PROGRAM": "iTerm.app"})
    assert iterm.startswith("\a\x1b]9;vaetui: run1 failed: run1: failed at step 7") and iterm.endswith("\x07")
    assert iterm.count("\x1b") == 1 and iterm.count("\x07") == 2  # the message's own escape cannot end it early
    foot = terminal_bytes(A, {"TERM": "foot"})
    assert foot.startswith("\a\x1b]777;notify;vaetui: run1 failed;run1: failed")
    # inside tmux the outer terminal is unknown: said by VAETUI_OSC, and wrapped for tmux's passthrough
    wrapped = terminal_bytes(A, {"TMUX": "/tmp/s,1,0", "VAETUI_OSC": "9"})
    assert wrapped.startswith("\a\x1bPtmux;\x1b\x1b]9;") and wrapped.endswith("\x1b\\")
    assert terminal_bytes(A, {"TERM_PROGRAM": "iTerm.app", "VAETUI_OSC": "none"}) == "\a"


def test_tmux_is_told_only_inside_tmux():
    assert tmux_command(A, {}) is None
    cmd = tmux_command(Alert("finished", "r#1", 2, "completed"), {"TMUX": "/tmp/s,1,0"})
    assert cmd[:2] == ["tmux", "display-message"] and cmd[-1] == "vaetui: r##1 finished: r##1: completed"
