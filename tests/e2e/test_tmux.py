"""End to end: the real `vaetui` command in tmux, driven by keys, read back with capture-pane."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from vaetui.runs.store import RunStore


class Tmux:
    def __init__(self, cwd: Path, width: int = 100, height: int = 30):
        assert shutil.which("tmux"), "the end-to-end test needs tmux: apt-get install tmux (.ci/run does)"
        self.name = f"vaetui-{uuid.uuid4().hex[:8]}"
        self.socket = ["-L", self.name]
        subprocess.run(["tmux", *self.socket, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        "-c", str(cwd)], check=True, env={**os.environ, "TERM": "xterm-256color"})

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", *self.socket, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", *self.socket, "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True, check=True).stdout

    def wait_for(self, pattern: str, timeout: float = 90.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.screen())
            if m:
                return m
            time.sleep(0.2)
        raise AssertionError(f"never saw {pattern!r} on screen:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(["tmux", *self.socket, "kill-server"], capture_output=True)


def test_train_pause_quit_and_resume_in_tmux(tmp_path):
    tmux = Tmux(tmp_path)
    try:
        vaetui = Path(sys.executable).with_name("vaetui")
        tmux.send(f"OMP_NUM_THREADS=1 {vaetui} --threads 1 --runs-dir runs; echo EXITED=$?", "Enter")
        tmux.wait_for(r"enter open")
        tmux.send("n")
        tmux.wait_for(r"preset\s+faces64")
        # the model (the first field) stays vae; preset: open the list, one down (faces64 -> tiny), choose
        tmux.send("Tab", "Enter")  # keys are read in order: the list opened is the preset's
        tmux.wait_for(r"seed-l3")  # the list is open
        tmux.send("Down", "Enter")
        tmux.wait_for(r"preset\s+tiny")
        # to the epochs field: data, precision, root, size, latent, beta, warm-up, cycles, free bits, lr, batch, epochs
        tmux.send(*(["Tab"] * 12))
        time.sleep(0.3)
        tmux.send("C-u")
        time.sleep(0.3)
        tmux.send("500")
        tmux.wait_for(r"epochs\s+500")
        tmux.send("C-s")
        first = int(tmux.wait_for(r"step (\d+)/").group(1))
        advanced = tmux.wait_for(rf"step (?!{first}/)(\d+)/")
        assert int(advanced.group(1)) > first
        tmux.send("p")
        tmux.wait_for(r"● paused")
        tmux.send("q")
        tmux.wait_for(r"Stop it, save a")
        tmux.send("y")
        tmux.wait_for(r"EXITED=0")
    finally:
        tmux.kill()
    store = RunStore(tmp_path / "runs", include_demo=False)
    (name,) = store.names()
    run = store.open(name)
    info = run.info()
    assert info.status == "stopped" and info.step > 0
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert state["step"] == info.step
    # and it resumes headless from where it stopped
    out = subprocess.run([sys.executable, "-m", "vaetui", "train", "--resume", name, "--runs-dir", str(tmp_path / "runs"),
                          "--max-steps", str(info.step + 2), "--log-format", "json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert '"resumed": true' in out.stdout and f'"step": {info.step}' in out.stdout


def test_piped_vaetui_says_it_needs_a_terminal(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vaetui"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and "needs a terminal" in out.stderr
