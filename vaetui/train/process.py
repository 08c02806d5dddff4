"""Starting `vaetui train` as a process of its own: for the TUI, and for a study's trials under torchrun.

A trainer in its own process shares nothing with whoever started it: not the GIL (keys stay
instant in the window), not the cores' OpenMP pools, not the terminal. Its events go to the
run's metrics.jsonl like any run's, so the starter follows it as it would follow any other
run, and its intents go through the run's control file (vaetui.train.control). What it prints on
stderr (a one-line error, at most) is kept in the run's train.log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

LOG_NAME = "train.log"


def train_command(run_name: str, runs_root: Path, nproc: int = 1, threads: int | None = None,
                  device: str | None = None) -> list[str]:
    """`vaetui train --resume RUN` (a new run starts from its first step), under torchrun when nproc > 1."""
    cmd = [sys.executable, "-m"]
    if nproc > 1:
        cmd += ["torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m"]
    cmd += ["vaetui", "train", "--resume", run_name, "--runs-dir", str(runs_root), "--log-format", "json"]
    if threads:
        cmd += ["--threads", str(threads)]
    if device and device != "auto":
        cmd += ["--device", device]
    return cmd


def spawn_trainer(run, runs_root: Path, nproc: int = 1, threads: int | None = None, device: str | None = None,
                  detach: bool = False) -> subprocess.Popen:
    """Start training run in a child process; detach: in a session of its own, so it outlives this one's
    terminal (an SSH session that drops does not stop it)."""
    from vaetui.runs.alerts import NOTIFY_ENV
    from vaetui.train.control import FROM_ENV, ControlFile
    from vaetui.runtime import training_environment

    # What the control file holds now is a former trainer's; a key pressed while this one starts is for it.
    env = {**training_environment(), FROM_ENV: str(ControlFile(run.path).size())}
    env.pop(NOTIFY_ENV, None)  # whoever follows a trainer alerts the person (twice would be once too many)
    log = open(run.path / LOG_NAME, "ab")  # a full pipe would stall it; a file outlives the starter
    try:
        return subprocess.Popen(train_command(run.name, runs_root, nproc, threads, device), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=detach,
                                env=env)
    finally:
        log.close()


def last_error(run) -> str:
    """The last line the trainer wrote to its train.log ('' when none)."""
    try:
        lines = (Path(run.path) / LOG_NAME).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].removeprefix("vaetui: error: ") if lines else ""


def follow(run, proc: subprocess.Popen, every: float = 0.2) -> Iterator:
    """The events a child trainer appends to the run's log, as it appends them, until it ends; a FailedEvent
    (with the last line of its train.log) when it exits without saying how it ended."""
    from vaetui.runs.events import FailedEvent, FinishedEvent
    from vaetui.runs.history import events_in
    from vaetui.runs.logfile import LogFollower

    follower = LogFollower(run.metrics_path)
    follower.read_bytes()  # what the log held before: only this launch's events count
    ended = False
    while not ended:
        ended = proc.poll() is not None
        data, _ = follower.read_bytes()
        for event in events_in(data):
            yield event
            if isinstance(event, (FinishedEvent, FailedEvent)):
                proc.wait()
                return
        time.sleep(every)
    error = last_error(run)
    yield FailedEvent(step=0, error=f"the trainer exited {proc.returncode}" + (f": {error}" if error else ""))
