"""How the TUI feels over SSH: first frame, keys while training, bytes on the wire, training speed.

Runs the real `vaetui` in a pseudo-terminal (120x40) and measures, in one run:
- time to first frame (process start until the runs list is on screen);
- training images/s inside the TUI vs headless `vaetui train`, same config;
- key-press-to-screen latency while training ('?' opens help, escape closes it), p50/p95;
- bytes written to the terminal per second while monitoring with live images, and while paused.

    python bench/ui_speed.py [--steps 150] [--threads 2]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vaetui-uibench-"))
    store = RunStore(tmp / "runs", include_demo=False)
    cfg = with_overrides(preset("faces64"), {"max_steps": args.steps, "image_every": 25, "threads": args.threads})
    store.create(cfg, "tui")
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    vaetui = str(Path(sys.executable).with_name("vaetui"))

    t_start = time.monotonic()
    term = Term([vaetui, "--runs-dir", str(tmp / "runs"), "--threads", str(args.threads)], env, COLS, ROWS)
    term.wait_for(b"enter open")
    first_frame = time.monotonic() - t_start

    term.send(b"\x1b[B")  # down: past the packaged demo to our run
    term.read(0.3)
    term.send(b"c")  # continue a run with no checkpoint yet: starts training
    term.wait_for(b"img/s", timeout=120)
    latencies = []
    term.read(2.0)
    for _ in range(40):
        term.buf = b""
        t0 = time.monotonic()
        term.send(b"?")
        while b"escape or ? closes" not in term.buf and time.monotonic() - t0 < 5:
            term.read(0.005)
        latencies.append(time.monotonic() - t0)
        term.send(b"\x1b")
        term.read(0.6)
    before, t0, wall0 = term.total, time.monotonic(), time.time()
    term.read(30.0)  # following the run, no keys: what a person watching pays over SSH
    live_rate = (term.total - before) / (time.monotonic() - t0)
    live_window = (wall0, time.time())
    term.send(b"p")
    term.read(2.0)
    before, t0 = term.total, time.monotonic()
    term.read(8.0)
    paused_rate = (term.total - before) / (time.monotonic() - t0)
    term.send(b"p")
    run = store.open("tui")
    while run.info().status != "finished":
        term.read(0.5)
    term.send(b"q")
    term.read(1.0)
    os.kill(term.pid, 9)

    def speeds(path: Path, window=None) -> float:
        rates = [e["images_per_s"] for e in map(json.loads, path.read_text().splitlines())
                 if e["type"] == "step" and e["step"] > 20 and (window is None or window[0] <= e["time"] <= window[1])]
        return len(rates) / sum(1 / r for r in rates)

    tui_speed = speeds(run.metrics_path, live_window)
    subprocess.run([vaetui, "train", "--preset", "faces64", "--max-steps", str(args.steps), "--image-every", "25",
                    "--threads", str(args.threads), "--runs-dir", str(tmp / "runs"), "--name", "headless",
                    "--log-format", "json"], env=env, capture_output=True, check=True)
    headless_speed = speeds(store.open("headless").metrics_path)
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    print(f"terminal {COLS}x{ROWS}, faces64, {args.threads} threads")
    print(f"  time to first frame:                 {first_frame * 1000:7.0f} ms   (target < 500 ms)")
    print(f"  training in the TUI (while followed) vs headless: {tui_speed:.0f} vs {headless_speed:.0f} images/s = "
          f"{100 * tui_speed / headless_speed:.0f}%   (target >= 90%)")
    print(f"  key to screen while training:        p50 {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
          f"   (target p95 < 50 ms)")
    print(f"  bytes to the terminal, live images:  {live_rate / 1024:7.2f} KB/s   (target <= 8 KB/s)")
    print(f"  bytes to the terminal, paused:       {paused_rate / 1024:7.2f} KB/s   (target ~ 0)")


if __name__ == "__main__":
    main()
