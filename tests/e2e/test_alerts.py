"""Alerts where the person is: read back from a scripted terminal (a pty), a tmux server with a client attached, the
person's own command, and the TUI following a run another process trains."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path


from fake_runs import make_finished_run

VAETUI = Path(sys.executable).with_name("vaetui")
TRAIN = ["train", "--preset", "tiny", "--max-steps", "2", "--dataset-size", "64", "--batch-size", "16", "--threads",
         "1", "--name", "t"]


def read_pty(master: int, until, timeout: float = 120.0) -> bytes:
    """What a terminal was sent, until `until(bytes so far)` (or the writer closed it)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(out):
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            out += chunk
    return out


def test_a_run_in_a_terminal_rings_notifies_and_runs_the_persons_command(tmp_path):
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "VAETUI_OSC", "VAETUI_NOTIFY_CMD")}
    env.update(TERM_PROGRAM="iTerm.app", TERM="xterm-256color", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([str(VAETUI), *TRAIN, "--runs-dir", str(tmp_path / "runs"), "--notify-cmd",
                             f"cat > {tmp_path / 'alert.json'}"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=tmp_path)
    os.close(slave)
    try:
        seen = read_pty(master, lambda b: proc.poll() is not None and b"\x1b]9;" in b)
    finally:
        proc.wait(60)
        os.close(master)
    assert proc.returncode == 0, seen.decode(errors="replace")[-2000:]
    assert b"\a\x1b]9;vaetui: t finished: t: max_steps at step 2\x07" in seen
    alert = json.loads((tmp_path / "alert.json").read_text())
    assert (alert["type"], alert["kind"], alert["run"], alert["step"]) == ("alert", "finished", "t", 2)


def test_a_failed_notify_command_is_a_warning_and_the_run_stands(tmp_path):
    out = subprocess.run([str(VAETUI), *TRAIN, "--runs-dir", str(tmp_path / "runs"), "--log-format", "json",
                          "--notify-cmd", "exit 3"], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert out.returncode == 0
    assert "vaetui: warning: alert command --notify-cmd failed: exit 3" in out.stderr
    assert "\a" not in out.stdout + out.stderr  # no terminal here: no bell


def test_inside_tmux_the_status_line_says_it(tmp_path):
    """A tmux server, a client attached in a pty (what a person sees), vaetui train in its pane."""
    assert shutil.which("tmux"), "this test needs tmux: apt-get install tmux (.ci/run does)"
    name = f"vaetui-{uuid.uuid4().hex[:8]}"
    sock = ["tmux", "-L", name]
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "VAETUI_NOTIFY_CMD")}
    env.update(TERM="xterm-256color", OMP_NUM_THREADS="1")
    command = f"{VAETUI} {' '.join(TRAIN)} --runs-dir {tmp_path / 'runs'}; echo EXITED=$?; sleep 30"
    subprocess.run([*sock, "new-session", "-d", "-s", name, "-x", "100", "-y", "30", "-c", str(tmp_path), command],
                   check=True, env=env)
    master, slave = pty.openpty()
    client = subprocess.Popen([*sock, "attach", "-t", name], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    try:
        seen = read_pty(master, lambda b: b"vaetui: t finished: t: max_steps at step 2" in b)
        pane = subprocess.run([*sock, "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout
    finally:
        subprocess.run([*sock, "kill-server"], capture_output=True)
        client.wait(10)
        os.close(master)
    assert b"vaetui: t finished: t: max_steps at step 2" in seen, pane
    assert b"\a" in seen  # the bell, passed on by tmux to the terminal it is attached to


def test_the_tui_following_a_run_alerts_on_its_events_and_its_silence(tmp_path, monkeypatch):
    """The monitor of a run another process trains: a failure appended to its log, then silence while its
    trainer lives, each reach the person's command."""
    from vaetui.runs.store import Run
    from vaetui.ui.app import make_app
    from vaetui.ui.screens.monitor import MonitorScreen

    path = make_finished_run(tmp_path, name="r")
    log = path / "metrics.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(line for line in lines if '"finished"' not in line) + "\n")  # still running
    got = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("VAETUI_NOTIFY_CMD", f"cat >> {got}")
    monkeypatch.setenv("VAETUI_QUIET_AFTER", "2")

    class Holder:  # a trainer on this host that is alive, as the run's lock would say
        pid, host, here = os.getpid(), "here", False

    monkeypatch.setattr(Run, "live_trainer", lambda self: Holder())

    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=False, monitor="r")
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 60
            while not (isinstance(app.screen, MonitorScreen) and app.screen.view.history.step == 60) \
                    and time.monotonic() < deadline:
                await pilot.pause(0.05)
            while not [a for a in app.alerts if a.kind == "quiet"] and time.monotonic() < deadline:
                await pilot.pause(0.1)  # nothing logged for 2 s while its trainer lives
            with log.open("a") as fh:
                fh.write(json.dumps({"type": "failed", "step": 60, "time": 2.0, "error": "out of memory"}) + "\n")
            while not [a for a in app.alerts if a.kind == "failed"] and time.monotonic() < deadline:
                await pilot.pause(0.1)
            app.deliver.wait()
            return [a.kind for a in app.alerts]

    kinds = asyncio.run(scenario())
    assert kinds == ["quiet", "failed"]
    sent = [json.loads(line) for line in got.read_text().splitlines()]
    assert [(a["kind"], a["run"]) for a in sent] == [("quiet", "r"), ("failed", "r")]
    assert "out of memory" in sent[1]["message"]


def test_a_trainer_the_tui_starts_leaves_the_alerts_to_the_tui(tmp_path, monkeypatch):
    """One alert per event: the window that follows the run says it, not also the child it started."""
    import vaetui.train.process as process
    from vaetui.runs.store import RunStore

    from helpers import tiny_config

    run = RunStore(tmp_path, include_demo=False).create(tiny_config(), "c")
    monkeypatch.setenv("VAETUI_NOTIFY_CMD", "cat > /dev/null")
    seen = {}

    real = subprocess.Popen

    def fake_popen(cmd, **kw):
        seen.update(kw["env"])
        return real(["true"])

    monkeypatch.setattr(process.subprocess, "Popen", fake_popen)
    process.spawn_trainer(run, tmp_path).wait()
    assert "VAETUI_NOTIFY_CMD" not in seen and seen  # the rest of the environment is passed on
