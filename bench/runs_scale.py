"""Many runs stay cheap: summaries folded once and cached, the runs list fed by a worker, a huge log opened fast.

Generates runs with real events (the engine's event classes, written as the run store
writes them), then measures, in one invocation:
- `vaetui runs --json`, cold (no summary cache) against warm;
- the TUI's first frame with all those runs (a pty at 120x40), cold and warm;
- key -> screen in the runs list (`?` opens help) while summaries refresh (20 runs keep growing);
- the UI-thread time of one runs-list refresh (in-process, Textual's headless driver);
- `vaetui monitor` on one run of 1,000,000 events: first full frame, and peak memory.

    python bench/runs_scale.py [--runs 200] [--steps 20000] [--big 1000000] [--presses 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from term import Term

from vaetui.config.presets import preset
from vaetui.config.resolve import with_overrides
from vaetui.runs.events import CheckpointEvent, EpochEvent, EvalEvent, FinishedEvent, ImagesEvent, StartedEvent, StepEvent

SPE = 500  # steps per epoch of the generated runs


def line(event) -> str:
    return json.dumps(event.to_json(), separators=(",", ":"), allow_nan=True) + "\n"


def step_line(step: int, total: int, t0: float) -> str:
    loss = 3000 + 6000 / (1 + step / 300)
    return line(StepEvent(step=step, time=t0 + step * 0.1, epoch=(step - 1) // SPE + 1, epoch_step=(step - 1) % SPE + 1,
                          steps_per_epoch=SPE, total_steps=total, loss=loss, recon=loss - 40, kl=40.0, beta=1.0,
                          lr=1e-3, nats_per_dim=loss / 12288, bits_per_dim=loss / 8517, images_per_s=250.0,
                          elapsed=step * 0.1, nonfinite=0))


def write_run(root: Path, name: str, steps: int, finished: bool, t0: float = 1.79e9) -> Path:
    """A run folder whose log holds what the engine would have written for `steps` steps."""
    cfg = with_overrides(preset("faces64"), {"epochs": max(1, steps // SPE), "dataset_size": SPE * 64})
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(cfg.to_json())
    total = steps
    with open(path / "metrics.jsonl", "w") as fh:
        fh.write(line(StartedEvent(step=0, time=t0, run=name, device="cpu", parameters=1492899, total_steps=total,
                                   steps_per_epoch=SPE)))
        for step in range(1, steps + 1):
            fh.write(step_line(step, total, t0))
            if step % 200 == 0:
                fh.write(line(ImagesEvent(step=step, time=t0 + step * 0.1, path=f"snapshots/step-{step:08d}.png")))
            if step % SPE == 0:
                epoch = step // SPE
                v = 3100 + 6000 / (1 + step / 300)
                fh.write(line(EvalEvent(step=step, time=t0 + step * 0.1, epoch=epoch, split="valid", loss=v, recon=v - 40,
                                        kl=40.0, nats_per_dim=v / 12288, bits_per_dim=v / 8517, count=512, beta=1.0)))
                fh.write(line(EpochEvent(step=step, time=t0 + step * 0.1, epoch=epoch, train_loss=v - 50, valid_loss=v,
                                         train_recon=v - 90, train_kl=40.0, best=True)))
                fh.write(line(CheckpointEvent(step=step, time=t0 + step * 0.1, path=str(path / "ckpt-latest.pt"),
                                              label="latest")))
        if finished:
            fh.write(line(FinishedEvent(step=steps, time=t0 + steps * 0.1, epoch=steps // SPE, reason="completed")))
    return path


def timed(cmd, env) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    return time.perf_counter() - t


def pct(values, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def grow(root: Path, names: list[str], stop: threading.Event) -> None:
    """Keep appending step events to some runs, as trainers would: the list has something to refresh."""
    steps = {n: 10**6 for n in names}
    while not stop.is_set():
        for n in names:
            steps[n] += 1
            with open(root / n / "metrics.jsonl", "a") as fh:
                fh.write(step_line(steps[n], 2 * 10**6, 1.79e9))
        stop.wait(0.05)


def ui_refresh_time(root: Path, env: dict) -> tuple[float, float]:
    """UI-thread ms of one runs-list refresh: unchanged summaries, and 20 rows changed."""
    os.environ.update(env)
    from dataclasses import replace

    from vaetui.ui.app import make_app
    from vaetui.ui.screens.runs import RunsScreen

    async def scenario():
        app = make_app(runs_dir=root, include_demo=False)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            deadline = time.monotonic() + 120
            while not (isinstance(screen, RunsScreen) and screen.infos and len(screen.infos) >= len(os.listdir(root))):
                await pilot.pause(0.1)
                if time.monotonic() > deadline:
                    raise SystemExit("the runs list never filled")
            infos = list(screen.infos)
            same, changed = [], []
            for k in range(10):
                t = time.perf_counter()
                screen.show_runs(infos)
                same.append(time.perf_counter() - t)
                moved = [replace(i, step=i.step + k + 1, epochs_done=i.epochs_done + 1) if j < 20 else i
                         for j, i in enumerate(infos)]
                t = time.perf_counter()
                screen.show_runs(moved)
                changed.append(time.perf_counter() - t)
                await pilot.pause(0.05)
            return statistics.median(same) * 1000, statistics.median(changed) * 1000

    return asyncio.run(scenario())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--reuse", metavar="DIR", help="a folder a previous run of this benchmark generated")
    ap.add_argument("--grow", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.grow:
        grow(Path(args.grow[0]), args.grow[1:], threading.Event())
        return
    tmp = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="vaetui-scale-"))
    root = tmp / "runs"
    t = time.perf_counter()
    if not args.reuse:
        for i in range(args.runs):
            write_run(root, f"run-{i:03d}", args.steps, finished=i % 4 != 0)
    for cache in ("cache", "c2", "cold-tui"):
        shutil.rmtree(tmp / cache, ignore_errors=True)
    size = sum(p.stat().st_size for p in root.rglob("metrics.jsonl"))
    print(f"{args.runs} runs x {args.steps:,} step events ({size / 2**20:.0f} MB of logs), written in "
          f"{time.perf_counter() - t:.0f} s")
    vaetui = str(Path(sys.executable).with_name("vaetui"))
    env = {**os.environ, "VAETUI_CACHE_DIR": str(tmp / "cache"), "TERM": "xterm-256color"}
    runs_json = [vaetui, "runs", "--json", "--runs-dir", str(root)]

    cold = timed(runs_json, env)
    warm = [timed(runs_json, env) for _ in range(3)]
    print(f"vaetui runs --json: cold {cold:.2f} s, warm {statistics.median(warm):.2f} s (runs {', '.join(f'{w:.2f}' for w in warm)})"
          f" = {100 * statistics.median(warm) / cold:.1f}% of cold   (target <= 10%)")

    def first_frame(cache: str) -> tuple[float, float]:
        e = {**env, "VAETUI_CACHE_DIR": str(tmp / cache)}
        t0 = time.monotonic()
        term = Term([vaetui, "--runs-dir", str(root)], e)
        term.wait_for(b"runs", 30)
        screen = time.monotonic() - t0
        term.wait_for(b"enter open", 120)
        rows = time.monotonic() - t0
        term.kill()
        return screen, rows

    subprocess.run([vaetui, "runs", "--json", "--runs-dir", str(root)], env={**env, "VAETUI_CACHE_DIR": str(tmp / "c2")},
                   capture_output=True)  # a second warm cache, for the TUI
    cold_frame = first_frame("cold-tui")
    warm_frames = [first_frame("c2") for _ in range(3)]
    print(f"TUI first frame with {args.runs} runs: warm {statistics.median(w[0] for w in warm_frames) * 1000:.0f} ms "
          f"(first rows {statistics.median(w[1] for w in warm_frames) * 1000:.0f} ms), cold cache "
          f"{cold_frame[0] * 1000:.0f} ms (first rows {cold_frame[1] * 1000:.0f} ms)   (target < 500 ms)")

    growing = [f"run-{i:03d}" for i in range(0, args.runs, max(1, args.runs // 20))]
    # The writer is its own process: a thread here would share this process's GIL with the measuring loop.
    writer = subprocess.Popen([sys.executable, __file__, "--grow", str(root), *growing])
    term = Term([vaetui, "--runs-dir", str(root)], {**env, "VAETUI_CACHE_DIR": str(tmp / "c2")})
    term.wait_for(b"enter open", 60)
    term.read(3.5)  # one refresh has happened
    lat = []
    for _ in range(args.presses):
        term.buf = b""
        t0 = time.monotonic()
        term.send(b"?")
        while not term.shows(b"escape or ? closes") and time.monotonic() - t0 < 5:
            term.read(0.002)
        lat.append(time.monotonic() - t0)
        term.send(b"?")  # closes help too; a lone ESC is held ~200 ms by the input parser (an escape sequence?)
        term.read(0.15)
    term.kill()
    writer.kill()
    print(f"key -> screen in the runs list while {len(growing)} runs grow: p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p95 {pct(lat, 0.95) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms over {len(lat)} presses   (target p95 < 50 ms)")

    same, changed = ui_refresh_time(root, {"VAETUI_CACHE_DIR": str(tmp / "c2")})
    print(f"runs-list refresh on the UI thread: {same:.1f} ms (nothing changed), {changed:.1f} ms (20 rows changed)"
          f"   (target <= 20 ms)")

    t = time.perf_counter()
    big = tmp / "big" / "big" if args.reuse else write_run(tmp / "big", "big", args.big, finished=False)
    print(f"one run of {args.big:,} step events ({(big / 'metrics.jsonl').stat().st_size / 2**20:.0f} MB), written in "
          f"{time.perf_counter() - t:.0f} s")
    t0 = time.monotonic()
    term = Term([vaetui, "monitor", "big", "--runs-dir", str(tmp / "big")], env)
    term.wait_for(f"step {args.big}/".encode(), 60)
    frame = time.monotonic() - t0
    term.read(12)  # the older steps are folded in the background meanwhile
    peak = term.rss_peak_mb()
    term.kill()
    print(f"vaetui monitor on {args.big:,} events: first full frame {frame:.2f} s   (target <= 2 s); "
          f"peak memory {peak:.0f} MB with every step folded")


if __name__ == "__main__":
    main()
