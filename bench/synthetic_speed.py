"""Synthetic faces per second on one core, against a baseline measured in the same run.

The baseline is a per-image loop over the same renderer (batches of one), so the ratio
shows what vectorising buys; the absolute number is what the issue targets (>= 3,000/s
at 64x64 on one core).

    python bench/synthetic_speed.py [--size 64] [--n 4096]
"""

import argparse
import time

import torch

from vaetui.data.synthetic import SyntheticFaces


def rate(fn, n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="64")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(1)
    h, _, w = args.size.partition("x")
    ds = SyntheticFaces((int(h), int(w or h)))
    ds.images(range(args.batch))  # warm up

    def batched():
        for start in range(0, args.n, args.batch):
            ds.images(range(start, min(start + args.batch, args.n)))

    n_single = min(args.n, 256)

    def single():
        for i in range(n_single):
            ds.images([i])

    fast = rate(batched, args.n)
    slow = rate(single, n_single)
    print(f"synthetic faces {ds.size[0]}x{ds.size[1]}, 1 thread")
    print(f"  batched ({args.batch}/call): {fast:9.0f} images/s")
    print(f"  one per call (baseline): {slow:9.0f} images/s")
    print(f"  ratio: {fast / slow:.1f}x")


if __name__ == "__main__":
    main()
