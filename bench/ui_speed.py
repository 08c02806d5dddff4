"""What the TUI costs a person over SSH: bytes written to the terminal, key latency, training speed beside it.

Runs the real `vaetui` in a pseudo-terminal (120x40) and measures, in one run:
- first frame: process start until the runs list is on screen;
- following a live run trained by another process (`vaetui monitor RUN`): bytes/s averaged
  over a window, and the worst single second; faces64 and the tiny preset (the most events a
  second a run can send);
- the same for a run trained in the window, then while it is paused (ought to be 0);
- key -> screen while training in the window ('?' opens help, '?' closes it), p50/p95;
- what the window costs training: the trainer the window started, with the window drawing and with
  the window frozen (a cgroup freezer: no work at all, as if there were none), alternating in short
  segments (W H H W W H ...), images/s from the trainer's own log over the intervals between two
  step events with no other event between them (a picture, a validation, a checkpoint: the trainer's
  own work, landing in one kind of segment or the other by chance); the key presses' stretch, where
  the UI works hardest, beside it; and the UI process's own CPU while following.

    python bench/ui_speed.py [--window 60] [--speed-window 3] [--alternations 50] [--presses 200] [--threads 2] [--colors 256|truecolor]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from term import Freezer, Term

from vaetui.config.presets import preset
from vaetui.config.resolve import with_overrides
from vaetui.runs.store import Run, RunStore

COLS, ROWS = 120, 40


def window(term: Term, seconds: float) -> tuple[float, int]:
    """(average bytes/s, the worst whole second's bytes) over the next `seconds`."""
    start_total, t0 = term.total, time.monotonic()
    first = int(t0 - term.t0) + 1
    term.read(seconds)
    last = int(time.monotonic() - term.t0)
    worst = max((term.per_second.get(s, 0) for s in range(first, last)), default=0)
    return (term.total - start_total) / (time.monotonic() - t0), worst


def speeds(path: Path, window_s: tuple[float, float], batch: int) -> float:
    """images/s over the step intervals inside window_s (wall seconds): from one step event to the next, with
    no other event between them. A picture, an epoch's validation or a checkpoint is the trainer's own work,
    a second or more at a time, and lands in a W or an H segment by chance (in a 3 s segment it swung that
    segment's speed by a third); what the window costs shows in the steps. An interval straddling an edge
    of window_s is left out as well."""
    steps = seconds = 0.0
    prev = None
    for e in map(json.loads, path.read_text().splitlines()):
        if e["type"] != "step" or e["step"] <= 20 or not window_s[0] <= e["time"] <= window_s[1]:
            prev = None
            continue
        if prev is not None:
            steps, seconds = steps + e["step"] - prev["step"], seconds + e["time"] - prev["time"]
        prev = e
    return steps * batch / seconds if seconds else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process pid has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trainers_of(runs: Path) -> list[int]:
    """The pids of the processes training runs here, from each run's lock (the window's trainer outlives it)."""
    held = (Run(run, read_only=True).live_trainer() for run in runs.iterdir() if run.is_dir())
    return [h.pid for h in held if h is not None and h.pid > 0]


def stop_trainers(runs: Path, grace_s: float = 60.0) -> None:
    """Wait for the trainers on runs to stop (they were asked to), then end any left: the next run of this
    bench (its first frame above all) would otherwise share the machine with them."""
    end = time.monotonic() + grace_s
    while trainers_of(runs) and time.monotonic() < end:
        time.sleep(0.5)
    for pid in trainers_of(runs):
        os.kill(pid, signal.SIGTERM)


def main() -> None:
    global RUNS
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--speed-window", type=float, default=3.0, help="seconds of each W and H segment")
    ap.add_argument("--alternations", type=int, default=50, help="pairs of W and H segments")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--colors", default="truecolor", choices=("truecolor", "256"))
    ap.add_argument("--only-follow", action="store_true",
                    help="only part 2 (following a run another process trains), each also with the KL heat map on (k)")
    args = ap.parse_args()
    if args.alternations < 1 or args.speed_window <= 0 or args.window <= 0 or args.presses < 1:
        ap.error("--alternations and --presses must be at least 1, --window and --speed-window above 0")
    tmp = Path(tempfile.mkdtemp(prefix="vaetui-uibench-"))
    runs = tmp / "runs"
    RUNS = runs
    store = RunStore(runs, include_demo=False)
    long = {"epochs": 200, "image_every": 25, "log_every": 2, "threads": args.threads, "precision": "fp32"}
    config = with_overrides(preset("faces64"), long)
    batch = config.train.batch_size
    store.create(config, "tui")
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor" if args.colors == "truecolor" else ""}
    vaetui = str(Path(sys.executable).with_name("vaetui"))
    results = {}

    # 1. first frame
    t0 = time.monotonic()
    term = Term([vaetui, "--runs-dir", str(runs), "--threads", str(args.threads), "--colors", args.colors], env,
                COLS, ROWS)
    term.wait_for(b"enter open")
    results["first frame ms"] = (time.monotonic() - t0) * 1000
    term.kill()

    # 2. following a run trained by another process: faces64 (a step event every 2 steps, ~1.5 a second
    # here, as at GPU speeds) and the tiny preset (~25 step events, 6 pictures and 3 epochs a second: the
    # most a run can throw at the screen)
    for preset_name, extra in (("faces64", ["--epochs", "200", "--log-every", "2", "--image-every", "25"]),
                               ("tiny", ["--epochs", "100000"])):
        trainer = subprocess.Popen([vaetui, "train", "--preset", preset_name, *extra,
                                    "--threads", str(args.threads), "--precision", "fp32", "--runs-dir", str(runs),
                                    "--name", f"elsewhere-{preset_name}", "--log-format", "json"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(8)
        term = Term([vaetui, "monitor", f"elsewhere-{preset_name}", "--runs-dir", str(runs), "--colors", args.colors],
                    env, COLS, ROWS)
        term.wait_for(b"running elsewhere", 60)
        term.read(5)
        what = f"monitor {preset_name}"
        results[f"{what}: bytes/s"], results[f"{what}: worst second"] = window(term, args.window)
        term.send(b"k")  # the KL per dimension heat map instead of the pictures: what it costs while following
        term.read(3)
        what = f"heat {preset_name}"
        results[f"{what}: bytes/s"], results[f"{what}: worst second"] = window(term, args.window)
        term.kill()
        trainer.terminate()
        trainer.wait()
    if args.only_follow:
        for what in ("monitor faces64", "heat faces64", "monitor tiny", "heat tiny"):
            print(f"  {what + ':':<17} {results[what + ': bytes/s'] / 1024:6.2f} KB/s average, worst second "
                  f"{results[what + ': worst second'] / 1024:.1f} KB")
        shutil.rmtree(tmp, ignore_errors=True)
        return

    # 3. a run trained in the window: following, keys, paused. Then its cost in training speed, on that same
    # trainer process (separate headless processes differ among themselves by up to 25% on this host: the same
    # process is the fair baseline), below.
    term = Term([vaetui, "--runs-dir", str(runs), "--threads", str(args.threads), "--colors", args.colors], env,
                COLS, ROWS)
    term.wait_for(b"enter open")
    for _ in range(3):  # the runs are listed by name (demo, elsewhere-faces64, elsewhere-tiny, tui): down to "tui"
        term.send(b"\x1b[B")
        term.read(0.3)
    term.send(b"c")  # continue a run with no checkpoint yet: starts training
    term.wait_for(b"img/s", timeout=120)
    term.read(5)
    cpu0 = cpu_seconds(term.pid)
    results["in window: bytes/s"], results["in window: worst second"] = window(term, args.window)
    cpu1 = cpu_seconds(term.pid)
    ui_cpu = [(cpu1 - cpu0) / args.window]
    keys0 = time.time()
    latencies = []
    for _ in range(args.presses):
        term.buf = b""
        t = time.monotonic()
        term.send(b"?")
        while not term.shows(b"escape or ? closes") and time.monotonic() - t < 5:
            term.read(0.002)
        latencies.append(time.monotonic() - t)
        term.send(b"?")
        term.read(0.25)
    keys1 = time.time()
    term.read(1.0)  # the help's last close lands first: a 'p' sent into the help would be lost
    term.buf = b""
    term.send(b"p")
    term.wait_for(b"paused", 30)
    term.read(3.0)
    settle = time.monotonic()  # the newest picture's wipe finishes first (at most one picture, at BYTES_PER_S)
    while term.read(5.0) and time.monotonic() - settle < 120:  # rows of a wipe come up to ~2 s apart
        pass
    results["paused: settled after s"] = time.monotonic() - settle
    results["paused: bytes/s"], results["paused: worst second"] = window(term, 10.0)
    log = runs / "tui" / "metrics.jsonl"
    resumed = time.time()
    term.send(b"p")
    while not any(e["type"] == "step" and e["time"] > resumed for e in map(json.loads, log.read_text().splitlines())):
        if time.time() - resumed > 60:
            raise SystemExit("the window's run did not resume")
        term.read(0.5)
    term.read(5)

    # What the window costs its trainer: the same trainer, the window drawing (W) and the window frozen
    # (it does no work at all, as if there were none: H), in short segments ordered W H H W W H H W ...
    # so that the host's slow swings (+-10% over tens of seconds here) fall on both alike. On thawing, the
    # window catches up on what it missed: that burst counts to W.
    freezer = Freezer.make(term.pid)
    pause, go = (freezer.freeze, freezer.thaw) if freezer else (lambda: os.kill(term.pid, signal.SIGSTOP),
                                                                  lambda: os.kill(term.pid, signal.SIGCONT))
    segments: list[tuple[str, float, float]] = []  # (W or H, wall start, wall end)
    order = ["WH", "HW"] * ((args.alternations + 1) // 2)
    try:
        for kind in "".join(order[:args.alternations]):
            (go if kind == "W" else pause)()
            c0, w0 = cpu_seconds(term.pid), time.time()
            term.read(args.speed_window)
            segments.append((kind, w0, time.time()))
            if kind == "W":
                ui_cpu.append((cpu_seconds(term.pid) - c0) / (time.time() - w0))
    finally:
        go()
        if freezer:
            freezer.close()
    term.kill()
    from vaetui.train.control import ControlFile

    ControlFile(runs / "tui").stop()
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    if os.environ.get("UI_SPEED_DEBUG"):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        for k, a, b in segments:
            print(k, a, b, sum(1 for e in events if e["type"] == "step" and a <= e["time"] <= b))
        print([(e["type"], e["time"]) for e in events if e["type"] != "step"][-12:])
    speed = {kind: [speeds(log, (a, b), batch) for k, a, b in segments if k == kind] for kind in "WH"}
    kept = [i for i, (w, h) in enumerate(zip(speed["W"], speed["H"])) if not (math.isnan(w) or math.isnan(h))]
    if not kept:
        raise SystemExit("no segment held two step events with nothing between them: use a longer --speed-window")
    speed = {kind: [speed[kind][i] for i in kept] for kind in "WH"}
    during_keys = speeds(log, (keys0, keys1), batch)

    paused_by = "a cgroup freezer" if freezer else "SIGSTOP (pessimistic: Textual repaints all on SIGCONT)"
    print(f"terminal {COLS}x{ROWS}, faces64 fp32 (a step event every 2 steps), {args.threads} threads, "
          f"pictures in {args.colors}; the window paused by {paused_by}")
    print(f"  first frame                           {results['first frame ms']:7.0f} ms   (no #15 target; importing Python and Textual alone takes ~0.4 s here)")
    print(f"  (paused: measured once the last picture's wipe ended, {results['paused: settled after s']:.0f} s after)")
    for what in ("monitor faces64", "monitor tiny", "in window", "paused"):
        print(f"  {what + ':':<17} {results[what + ': bytes/s'] / 1024:6.2f} KB/s average, worst second "
              f"{results[what + ': worst second'] / 1024:5.1f} KB   (target <= 3 KB/s, <= 20 KB; paused 0)")
    print(f"  key to screen while training, {len(lat)} presses: p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms   (target p95 < 50 ms)")
    slow = sorted(range(len(latencies)), key=latencies.__getitem__)[-5:][::-1]
    print("    the slowest presses (press number: ms): "
          + ", ".join(f"{i + 1}: {latencies[i] * 1000:.0f}" for i in slow))
    with_w, without = statistics.mean(speed["W"]), statistics.mean(speed["H"])
    pairs = sorted(w / h for w, h in zip(speed["W"], speed["H"]))
    print(f"  training in the window vs the window frozen, the same trainer, {2 * len(kept)} segments of "
          f"{args.speed_window:.0f} s (W H H W ...; images/s {min(speed['W']):.0f}-{max(speed['W']):.0f} drawing, "
          f"{min(speed['H']):.0f}-{max(speed['H']):.0f} frozen):")
    print(f"    {with_w:.0f} vs {without:.0f} = {100 * with_w / without:.1f}%   (target >= 95%); pairs "
          f"{100 * pairs[0]:.0f}-{100 * pairs[-1]:.0f}%, median {100 * statistics.median(pairs):.0f}%; "
          f"during the key presses {during_keys:.0f} = {100 * during_keys / without:.0f}%")
    print(f"    the window's own process (the UI, not the trainer) used {100 * statistics.mean(ui_cpu):.1f}% of a core "
          f"while following")


RUNS: Path | None = None  # the bench's runs folder, once made


if __name__ == "__main__":
    try:
        main()
    finally:  # done or interrupted: every trainer the bench started is asked to stop, waited for, then ended
        if RUNS is not None and RUNS.is_dir():
            from vaetui.train.control import ControlFile

            for run in RUNS.iterdir():
                if run.is_dir():
                    ControlFile(run).stop()
            stop_trainers(RUNS)
            shutil.rmtree(RUNS.parent, ignore_errors=True)
