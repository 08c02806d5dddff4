"""What the TUI costs a person over SSH: bytes written to the terminal, key latency, training speed beside it.

Runs the real `vaetui` in a pseudo-terminal (120x40) and measures, in one run:
- first frame: process start until the runs list is on screen;
- following a live run trained by another process (`vaetui monitor RUN`): bytes/s averaged
  over a window, and the worst single second;
- the same for a run trained in the window, then while it is paused (ought to be 0);
- key -> screen while training in the window ('?' opens help, '?' closes it), p50/p95;
- training images/s inside the TUI against headless `vaetui train`, same settings, interleaved:
  headless, the window (following, then keys), headless while the window's run is paused, the
  window again, headless; the two windows of following against the three headless (the
  key presses' window, where the UI works hardest, is reported beside it).

    python bench/ui_speed.py [--window 60] [--presses 200] [--threads 2] [--colors 256|truecolor]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from term import Term

from vaetui.config import preset, with_overrides
from vaetui.runs import RunStore

COLS, ROWS = 120, 40


def window(term: Term, seconds: float) -> tuple[float, int]:
    """(average bytes/s, the worst whole second's bytes) over the next `seconds`."""
    start_total, t0 = term.total, time.monotonic()
    first = int(t0 - term.t0) + 1
    term.read(seconds)
    last = int(time.monotonic() - term.t0)
    worst = max((term.per_second.get(s, 0) for s in range(first, last)), default=0)
    return (term.total - start_total) / (time.monotonic() - t0), worst


def speeds(path: Path, window_s: tuple[float, float] | None = None) -> float:
    rates = [e["images_per_s"] for e in map(json.loads, path.read_text().splitlines())
             if e["type"] == "step" and e["step"] > 20 and (window_s is None or window_s[0] <= e["time"] <= window_s[1])]
    return len(rates) / sum(1 / r for r in rates)


def headless_speed(vaetui: str, runs: Path, env: dict, threads: int, name: str) -> float:
    """images/s of `vaetui train` with the window's settings, no terminal (the machine drifts: taken twice)."""
    subprocess.run([vaetui, "train", "--preset", "faces64", "--max-steps", "300", "--image-every", "25",
                    "--threads", str(threads), "--precision", "fp32", "--runs-dir", str(runs), "--name", name,
                    "--log-format", "json"], env=env, capture_output=True, check=True)
    return speeds(runs / name / "metrics.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--colors", default="truecolor", choices=("truecolor", "256"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vaetui-uibench-"))
    runs = tmp / "runs"
    store = RunStore(runs, include_demo=False)
    long = {"epochs": 200, "image_every": 25, "threads": args.threads, "precision": "fp32"}
    store.create(with_overrides(preset("faces64"), long), "tui")
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

    # 2. following a run trained by another process
    trainer = subprocess.Popen([vaetui, "train", "--preset", "faces64", "--epochs", "200", "--image-every", "25",
                                "--threads", str(args.threads), "--precision", "fp32", "--runs-dir", str(runs),
                                "--name", "elsewhere", "--log-format", "json"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(8)
    term = Term([vaetui, "monitor", "elsewhere", "--runs-dir", str(runs), "--colors", args.colors], env, COLS, ROWS)
    term.wait_for(b"running elsewhere", 60)
    term.read(5)
    results["monitor: bytes/s"], results["monitor: worst second"] = window(term, args.window)
    term.kill()
    trainer.terminate()
    trainer.wait()

    # 3. a run trained in the window: following, keys, paused; headless right before and after it
    before = headless_speed(vaetui, runs, env, args.threads, "x-headless-before")  # named to list after "tui"
    term = Term([vaetui, "--runs-dir", str(runs), "--threads", str(args.threads), "--colors", args.colors], env,
                COLS, ROWS)
    term.wait_for(b"enter open")
    for _ in range(2):  # the runs are listed by name (demo, elsewhere, tui): down to "tui"
        term.send(b"\x1b[B")
        term.read(0.3)
    term.send(b"c")  # continue a run with no checkpoint yet: starts training
    term.wait_for(b"img/s", timeout=120)
    term.read(5)
    wall0 = time.time()
    results["in window: bytes/s"], results["in window: worst second"] = window(term, args.window)
    wall1 = time.time()
    latencies = []
    for _ in range(args.presses):
        term.buf = b""
        t = time.monotonic()
        term.send(b"?")
        while b"escape or ? closes" not in term.buf and time.monotonic() - t < 5:
            term.read(0.002)
        latencies.append(time.monotonic() - t)
        term.send(b"?")
        term.read(0.25)
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
    wall2 = time.time()
    # headless while the window's run is paused, then the window trains again: A B A B, so that the machine's
    # drift over minutes falls on both alike
    middle = headless_speed(vaetui, runs, env, args.threads, "x-headless-middle")
    log = runs / "tui" / "metrics.jsonl"
    resumed = time.time()
    term.send(b"p")
    while not any(e["type"] == "step" and e["time"] > resumed for e in map(json.loads, log.read_text().splitlines())):
        if time.time() - resumed > 60:
            raise SystemExit("the window's run did not resume")
        term.read(0.5)
    term.read(5)
    wall3 = time.time()
    term.read(args.window)
    wall4 = time.time()
    term.send(b"q")
    term.read(0.5)
    term.send(b"y")
    term.read(5)
    term.kill()
    tui = [speeds(log, (wall0, wall1)), speeds(log, (wall1, wall2)), speeds(log, (wall3, wall4))]
    headless = [before, middle, headless_speed(vaetui, runs, env, args.threads, "x-headless-after")]
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]

    print(f"terminal {COLS}x{ROWS}, faces64 fp32, {args.threads} threads, pictures in {args.colors}")
    print(f"  first frame                           {results['first frame ms']:7.0f} ms   (target < 500 ms)")
    print(f"  (paused: measured once the last picture's wipe ended, {results['paused: settled after s']:.0f} s after)")
    for what in ("monitor", "in window", "paused"):
        print(f"  {what + ':':<14} {results[what + ': bytes/s'] / 1024:6.2f} KB/s average, worst second "
              f"{results[what + ': worst second'] / 1024:5.1f} KB   (target <= 3 KB/s, <= 20 KB; paused 0)")
    print(f"  key to screen while training, {len(lat)} presses: p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms   (target p95 < 50 ms)")
    headless_mean = statistics.mean(headless)
    following = statistics.mean([tui[0], tui[2]])
    print(f"  training in the window vs headless, interleaved (window following {tui[0]:.0f} / during the keys "
          f"{tui[1]:.0f} / following {tui[2]:.0f}, headless {' / '.join(f'{v:.0f}' for v in headless)} images/s):")
    print(f"    following {following:.0f} vs {headless_mean:.0f} = {100 * following / headless_mean:.0f}%   "
          f"(target >= 95%); during the key presses {100 * tui[1] / headless_mean:.0f}%")


if __name__ == "__main__":
    main()
