"""Training images/s of each VAE family beside `vae`, at 64x64 and 218x178, and each family's `vaetui eval` time,
in one run (ratios against vae).

Each family trains for --steps steps (64x64: the faces64 preset's network; 218x178: the seed preset's, on synthetic
faces) in its own process (no allocator or thread-pool state shared), interleaved over --rounds so the machine's
drift hits every family alike; images/s is the trainer's own (training steps alone), the median of the step events
after the first. With --eval, each family's first 64x64 run is then evaluated by `vaetui eval RUN` with its defaults
(1,024 test images, k = 64, disentanglement on 4,096), in its own process, timed from start to exit: what a person
waits for, imports and data included.

    python bench/family_speed.py [--rounds 3] [--steps 40] [--big-steps 6] [--sizes 64x64,218x178] [--threads 2]
                                 [--models vae,iwae,...] [--eval]   (default: every family, both sizes)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from vaetui.config.settings import MODELS

SIZES = {"64x64": ["--preset", "faces64", "--dataset-size", "4096"],
         "218x178": ["--preset", "seed", "--data", "synthetic", "--dataset-size", "1024"]}


def one(model: str, size: str, steps: int, threads: int, runs: str, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "vaetui", "train", *SIZES[size], "--model", model, "--max-steps", str(steps),
           "--log-every", "1" if size != "64x64" else "5", "--image-every", "100000", "--checkpoint-every", "100000",
           "--threads", str(threads), "--runs-dir", runs, "--log-format", "json", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rates = [e["images_per_s"] for e in map(json.loads, out.stdout.splitlines()) if e.get("type") == "step"]
    return statistics.median(rates[1:] or rates)


def eval_seconds(name: str, runs: str, threads: int) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaetui", "eval", name, "--runs-dir", runs], capture_output=True, text=True,
                   check=True, env={**__import__("os").environ, "OMP_NUM_THREADS": str(threads)})
    return time.perf_counter() - t


def table(title: str, seen: dict[str, list[float]], unit: str, fmt: str = ".1f", higher_is_faster: bool = True) -> None:
    base = statistics.median(seen["vae"]) if seen.get("vae") else None
    print(f"\n{title}\n{'model':<12} {unit + ' (median)':>18} {'per round':>30} {'vs vae':>8}")
    for m, xs in seen.items():
        if not xs:
            continue
        med = statistics.median(xs)
        ratio = f"{(med / base if higher_is_faster else base / med):.2f}x" if base else "-"
        print(f"{m:<12} {med:>18{fmt}} {', '.join(f'{x:{fmt}}' for x in xs):>30} {ratio:>8}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40, help="steps at 64x64")
    ap.add_argument("--big-steps", type=int, default=6, help="steps at 218x178")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--iw-samples", default="5")
    ap.add_argument("--eval", action="store_true", help="also time vaetui eval of each family's 64x64 run")
    args = ap.parse_args()
    models, sizes = args.models.split(","), args.sizes.split(",")
    seen = {s: {m: [] for m in models} for s in sizes}
    evals: dict[str, list[float]] = {m: [] for m in models}
    with tempfile.TemporaryDirectory() as runs:
        for r in range(args.rounds):
            for size in sizes:
                for m in models:
                    extra = ["--iw-samples", args.iw_samples] if m == "iwae" else []
                    steps = args.steps if size == "64x64" else args.big_steps
                    seen[size][m].append(one(m, size, steps, args.threads, runs, extra + ["--name", f"{m}-{size}-{r}"]))
                    print(f"round {r + 1} {size} {m}: {seen[size][m][-1]:.1f} images/s", flush=True)
            if args.eval and "64x64" in sizes:
                for m in models:
                    evals[m].append(eval_seconds(f"{m}-64x64-0", runs, args.threads))
                    print(f"round {r + 1} eval {m}: {evals[m][-1]:.1f} s", flush=True)
    for size in sizes:
        table(f"training at {size}, batch 64, {args.threads} threads", seen[size], "images/s")
    if args.eval:
        table("vaetui eval RUN (defaults), a 64x64 run of each family", evals, "seconds", higher_is_faster=False)


if __name__ == "__main__":
    main()
