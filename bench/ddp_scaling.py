"""DDP scaling on this machine: training images/s with 1 and 2 processes (1 thread each), same global batch.

    python bench/ddp_scaling.py [--steps 60] [--preset faces64]

Scaling efficiency = (images/s with N processes) / (N x images/s with 1 process).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile


def rate(nproc: int, args, runs: str) -> float:
    train = ["train", "--preset", args.preset, "--threads", "1", "--max-steps", str(args.steps), "--log-format", "json",
             "--image-every", "100000", "--checkpoint-every", "100000", "--runs-dir", runs, "--name", f"p{nproc}"]
    if nproc == 1:
        cmd = [sys.executable, "-m", "vaetui", *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "vaetui",
               *train]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
    steps = [e for e in map(json.loads, (l for l in out.stdout.splitlines() if l.startswith("{")))
             if e["type"] == "step" and e["step"] > 10]
    return len(steps) / sum(1 / e["images_per_s"] for e in steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--preset", default="faces64")
    args = ap.parse_args()
    runs = tempfile.mkdtemp(prefix="vaetui-ddp-")
    atexit.register(shutil.rmtree, runs, ignore_errors=True)
    one = rate(1, args, runs)
    two = rate(2, args, runs)
    print(f"{args.preset}, global batch as the preset, 1 thread per process, {args.steps} steps (first 10 not timed)")
    print(f"  1 process:   {one:7.1f} images/s")
    print(f"  2 processes: {two:7.1f} images/s   speed-up {two / one:.2f}x, scaling efficiency {100 * two / (2 * one):.0f}%")


if __name__ == "__main__":
    main()
