"""The decoder's stride-2 transposed convolutions two ways: nn.ConvTranspose2d, and the same weights as one
stride-1 2x2 convolution into 4x the channels followed by a pixel shuffle (the "sub-pixel" form).

Both give the same outputs (checked here in float64); the question is which oneDNN runs faster,
forward + backward, at the seed's decoder shapes (batch 64, channels_last). Interleaved rounds,
medians; the ratio is ConvTranspose2d's time over the sub-pixel form's (> 1: sub-pixel faster).

    python bench/convt_forms.py [--threads 2] [--rounds 3] [--bf16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

# (in, out, input H, input W, padding) of the seed network's four decoder blocks at 218x178
LAYERS = [(256, 128, 14, 12, (1, 1)), (128, 64, 28, 24, (2, 2)), (64, 32, 54, 46, (0, 2)), (32, 32, 110, 90, (2, 2))]


def subpixel(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """ConvTranspose2d(k=4, s=2, padding=pad) of x with weight w (in, out, 4, 4), as conv2d + pixel_shuffle."""
    cin, cout = w.shape[:2]
    wt = w.transpose(0, 1)
    phases = [wt[:, :, [rh + 2, rh]][:, :, :, [rw + 2, rw]] for rh in (0, 1) for rw in (0, 1)]
    k = torch.stack(phases, 1).reshape(cout * 4, cin, 2, 2)
    q = F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1)), k), 2)
    h, wd = (x.shape[-2] - 1) * 2 - 2 * pad[0] + 4, (x.shape[-1] - 1) * 2 - 2 * pad[1] + 4
    return q[..., pad[0] : pad[0] + h, pad[1] : pad[1] + wd] + b.view(1, -1, 1, 1)


def timed(fn, x, reps: int = 3) -> float:
    for _ in range(2):
        fn(x).float().sum().backward()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn(x).float().sum().backward()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    m = torch.nn.ConvTranspose2d(4, 3, 4, 2, (2, 1)).double()
    x = torch.randn(2, 4, 9, 7, dtype=torch.double)
    assert (m(x) - subpixel(x, m.weight, m.bias, (2, 1))).abs().max() < 1e-12  # the same function
    torch.set_num_threads(args.threads)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    print(f"{args.threads} threads, {'bf16 autocast' if args.bf16 else 'fp32'}, batch 64, forward + backward")
    for cin, cout, h, w, pad in LAYERS:
        m = torch.nn.ConvTranspose2d(cin, cout, 4, 2, pad).to(memory_format=torch.channels_last)
        x = torch.randn(64, cin, h, w).to(memory_format=torch.channels_last).requires_grad_()
        a, b = [], []
        with autocast:
            for _ in range(args.rounds):
                a.append(timed(m, x))
                b.append(timed(lambda x: subpixel(x, m.weight, m.bias, pad), x))
        ca, cb = statistics.median(a), statistics.median(b)
        print(f"  {cin:>3}->{cout:<3} from {h}x{w}: ConvTranspose2d {ca * 1000:6.0f} ms  sub-pixel {cb * 1000:6.0f} ms"
              f"  ratio {ca / cb:.2f}  (rounds: {', '.join(f'{p / q:.2f}' for p, q in zip(a, b))})")


if __name__ == "__main__":
    main()
