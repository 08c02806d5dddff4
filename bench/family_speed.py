"""Training images/s of each VAE family at 64x64 beside `vae`, in one run (ratios against vae).

Each family trains the faces64 preset's network on synthetic faces for --steps steps, in its own process (no
allocator or thread-pool state shared), interleaved over --rounds so the machine's drift hits every family alike;
images/s is the trainer's own (training steps alone), the median of the step events after the first.

    python bench/family_speed.py [--rounds 3] [--steps 40] [--threads 2] [--models vae,iwae,...]  (default: every family)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from vaetui.config.settings import MODELS


def one(model: str, steps: int, threads: int, runs: str, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "vaetui", "train", "--preset", "faces64", "--model", model, "--max-steps", str(steps),
           "--dataset-size", "4096", "--log-every", "5", "--image-every", "100000", "--checkpoint-every", "100000",
           "--threads", str(threads), "--runs-dir", runs, "--log-format", "json", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rates = [e["images_per_s"] for e in map(json.loads, out.stdout.splitlines()) if e.get("type") == "step"]
    return statistics.median(rates[1:] or rates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--iw-samples", default="5")
    args = ap.parse_args()
    models = args.models.split(",")
    seen: dict[str, list[float]] = {m: [] for m in models}
    with tempfile.TemporaryDirectory() as runs:
        for r in range(args.rounds):
            for m in models:
                extra = ["--iw-samples", args.iw_samples] if m == "iwae" else []
                seen[m].append(one(m, args.steps, args.threads, runs, extra + ["--name", f"{m}-{r}"]))
    base = statistics.median(seen["vae"]) if "vae" in seen else None
    print(f"{'model':<12} {'images/s (median)':>18} {'per round':>30} {'vs vae':>8}")
    for m, rates in seen.items():
        ratio = f"{statistics.median(rates) / base:.2f}x" if base else "-"
        print(f"{m:<12} {statistics.median(rates):>18.1f} {', '.join(f'{x:.0f}' for x in rates):>30} {ratio:>8}")


if __name__ == "__main__":
    main()
