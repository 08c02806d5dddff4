"""Alerts where the person is: what in a run's events deserves a person's attention, and how to reach them.

An `Alert` comes from an event (a run finished or failed, a roll-back after non-finite steps, the collapse
alert) or from silence (a live, unpaused run that logged nothing for longer than a threshold: `QuietWatch`).
Whoever shows a run to a person delivers it (the TUI following it, `vaetui train` in a terminal, a study's
worker): a terminal bell, a desktop notification by OSC 9 or OSC 777 where the terminal is known to show one,
`tmux display-message` inside tmux, and the person's own command (`--notify-cmd`, or `VAETUI_NOTIFY_CMD`) with
the alert as JSON on its standard input, so ntfy, mail or a chat hook are one line of their shell. vaetui never
calls the network itself, and the command is never written into a run (it may hold a token).

This module only builds the bytes and the commands; the edges (cli, ui) write them where their terminal is.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

from vaetui.runs.events import Event, FailedEvent, FinishedEvent, WarningEvent

KINDS = ("finished", "failed", "rollback", "collapse", "quiet")
QUIET_AFTER_S = 600.0  # a live run that logged nothing this long is said to have gone quiet
NOTIFY_ENV = "VAETUI_NOTIFY_CMD"
NOTIFY_TIMEOUT_S = 30.0
# Terminals known to show OSC 9 (iTerm2, WezTerm, Ghostty, kitty, Windows Terminal, ConEmu) and OSC 777 (foot,
# urxvt, VTE's notify patch); VAETUI_OSC=9|777|none says it where detection cannot (inside tmux, over ssh).
OSC9_PROGRAMS = ("iTerm.app", "WezTerm", "ghostty")
OSC777_TERMS = ("foot", "rxvt-unicode")


@dataclass(frozen=True)
class Alert:
    kind: str  # one of KINDS
    run: str
    step: int
    message: str
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        return {"type": "alert", **asdict(self)}

    @property
    def title(self) -> str:
        return f"vaetui: {self.run} {self.kind}"

    @property
    def line(self) -> str:
        return f"{self.run}: {self.message}"


def alert_of(event: Event, run: str) -> Alert | None:
    """The alert an event raises, or None."""
    if isinstance(event, FinishedEvent):
        return Alert("finished", run, event.step, f"{event.reason} at step {event.step}")
    if isinstance(event, FailedEvent):
        return Alert("failed", run, event.step, f"failed at step {event.step}: {event.error}")
    if isinstance(event, WarningEvent) and event.cause in ("rollback", "collapse"):
        return Alert(event.cause, run, event.step, event.message)
    return None


class QuietWatch:
    """Says once that a live run has gone quiet (nothing logged for `after` seconds), and again only after it
    spoke in between. Paused or not live, silence is expected: nothing is said."""

    def __init__(self, after: float = QUIET_AFTER_S, now: float | None = None):
        self.after = after
        self.last = time.monotonic() if now is None else now
        self.said = False

    def heard(self, now: float | None = None) -> None:
        self.last = time.monotonic() if now is None else now
        self.said = False

    def check(self, run: str, step: int, expecting: bool, now: float | None = None) -> Alert | None:
        now = time.monotonic() if now is None else now
        if not expecting:
            self.heard(now)  # the clock starts when it should be talking again
            return None
        if self.said or now - self.last < self.after:
            return None
        self.said = True
        return Alert("quiet", run, step, f"nothing logged for {int(now - self.last)} s at step {step}, though its "
                                         f"trainer is alive")


def quiet_after(env: Mapping[str, str] | None = None) -> float:
    """Seconds of silence before a live run is said to be quiet: VAETUI_QUIET_AFTER (vaetui --quiet-after), else
    QUIET_AFTER_S."""
    env = os.environ if env is None else env
    try:
        value = float(env.get("VAETUI_QUIET_AFTER", QUIET_AFTER_S))
    except ValueError:
        return QUIET_AFTER_S
    return value if value > 0 else QUIET_AFTER_S


def _clean(text: str) -> str:
    """No control characters inside an escape sequence (a message could end it early)."""
    return "".join(c if c.isprintable() else " " for c in text)[:200]


def terminal_bytes(alert: Alert, env: Mapping[str, str] | None = None) -> str:
    """The bell, and a desktop notification where the terminal shows one (inside tmux: passed through to the outer
    terminal, which needs tmux's allow-passthrough, when VAETUI_OSC names its kind)."""
    env = os.environ if env is None else env
    kind = env.get("VAETUI_OSC", "")
    if not kind:
        if env.get("TERM_PROGRAM") in OSC9_PROGRAMS or env.get("WT_SESSION") or env.get("ConEmuANSI") == "ON" \
                or env.get("TERM") == "xterm-kitty":
            kind = "9"
        elif any(env.get("TERM", "").startswith(t) for t in OSC777_TERMS) or env.get("VTE_VERSION"):
            kind = "777"
    title, body = _clean(alert.title), _clean(alert.line)
    osc = {"9": f"\x1b]9;{title}: {body}\x07", "777": f"\x1b]777;notify;{title};{body}\x07"}.get(kind, "")
    if osc and env.get("TMUX"):
        osc = "\x1bPtmux;" + osc.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return "\a" + osc


def tmux_command(alert: Alert, env: Mapping[str, str] | None = None) -> list[str] | None:
    """`tmux display-message` for this alert when inside tmux (its status line, and its message log), else None."""
    env = os.environ if env is None else env
    if not env.get("TMUX"):
        return None
    return ["tmux", "display-message", "-d", "8000", _clean(f"{alert.title}: {alert.line}").replace("#", "##")]


def run_quietly(argv: list[str] | str, stdin: str = "", shell: bool = False) -> str | None:
    """Run a command, never blocking past NOTIFY_TIMEOUT_S; returns why it failed, or None."""
    try:
        done = subprocess.run(argv, input=stdin, text=True, shell=shell, timeout=NOTIFY_TIMEOUT_S,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[:200]}"


def notify_command(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The person's command: --notify-cmd, else VAETUI_NOTIFY_CMD, else None."""
    env = os.environ if env is None else env
    return explicit or env.get(NOTIFY_ENV) or None


class Deliverer:
    """Delivers alerts off the caller's thread (training and the UI never wait on a person's command): `write`
    gets the terminal's bytes (None: no terminal here), tmux and the command run in a thread."""

    def __init__(self, command: str | None, write=None, env: Mapping[str, str] | None = None, on_error=None):
        self.command, self.write, self.env = command, write, dict(os.environ if env is None else env)
        self.on_error = on_error
        self.threads: list[threading.Thread] = []

    def __call__(self, alert: Alert) -> None:
        if self.write is not None:
            self.write(terminal_bytes(alert, self.env))
        jobs = []
        if self.write is not None and (tmux := tmux_command(alert, self.env)):
            jobs.append((tmux, "", False))
        if self.command:
            jobs.append((self.command, json.dumps(alert.to_json()) + "\n", True))
        if jobs:
            t = threading.Thread(target=self._run, args=(jobs,), daemon=True, name="vaetui-alert")
            t.start()
            self.threads = [x for x in self.threads if x.is_alive()] + [t]

    def _run(self, jobs) -> None:
        for argv, stdin, shell in jobs:
            why = run_quietly(argv, stdin, shell)
            if why and self.on_error is not None:
                self.on_error(f"alert command {'--notify-cmd' if shell else 'tmux'} failed: {why}")

    def wait(self, timeout: float = NOTIFY_TIMEOUT_S) -> None:
        """Before a process exits: the alerts it started are delivered."""
        for t in self.threads:
            t.join(timeout)


def alerting(events, run: str, deliver):
    """Pass events through, delivering the alert each raises."""
    for event in events:
        yield event
        alert = alert_of(event, run)
        if alert is not None:
            deliver(alert)
