"""Training images/s at the machine's limit: the seed loop, a tuned plain loop and vaetui, each in its own process.

In one invocation, at each size (default 218x178 and 64x64), batch 64, the same threads:
- seed loop: a faithful re-implementation of the assignment (its forward with a sigmoid
  and F.binary_cross_entropy summed, a PIL + ToTensor DataLoader, the default allocator,
  fp32, Adam 1e-4, the loss read back every step);
- tuned loop: the same loop with only the glibc allocator environment variables
  (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000) and channels_last, in fp32
  and with bf16 autocast;
- vaetui: its Trainer on the same images through the decode-once cache, fp32 and bf16.

For each it prints images/s, the ratios to both loops, the share of the matmul peak
(fp32 and bf16 peaks measured in the same run; forward + backward counted as 3x the
forward's conv/linear FLOPs), the spread of per-step times (p90/p10), and the load of
other processes during its window ("disturbed" when another process took > 0.2 cores).

    python bench/train_speed.py [--steps 12] [--small-steps 60] [--sizes 218x178,64x64] [--threads 2]
                                [--workers seed,tuned-fp32,tuned-bf16,vaetui-fp32,vaetui-bf16]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALLOCATOR_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
WORKERS = ("seed", "tuned-fp32", "tuned-bf16", "vaetui-fp32", "vaetui-bf16")


def forward_flops(model, size) -> float:
    """FLOPs of one image's forward pass through convolutions and linear layers (2 per MAC)."""
    import torch
    from torch import nn

    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            total[0] += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
        elif isinstance(mod, nn.ConvTranspose2d):
            total[0] += inp[0].numel() * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total[0] += mod.in_features * mod.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(torch.zeros(1, 3, *size))
        model.decode_logits(mu)
    for h in hooks:
        h.remove()
    return 2.0 * total[0]


def matmul_peak(threads: int, dtype_name: str) -> float:
    """GFLOP/s of a 2048² matmul, the best of several (the machine's practical peak in this dtype)."""
    import torch

    torch.set_num_threads(threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(8):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 2048**3 / best / 1e9


class LoadMeter:
    """CPU time other processes took during a window, in cores (from /proc/stat minus this process)."""

    def __init__(self):
        self.start = (self._busy(), self._own(), time.monotonic())

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as fh:
            parts = [int(v) for v in fh.readline().split()[1:]]
        idle = parts[3] + parts[4]
        return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system

    def others(self) -> float:
        busy, own, now = self._busy(), self._own(), time.monotonic()
        return max(0.0, (busy - self.start[0]) - (own - self.start[1])) / max(now - self.start[2], 1e-9)


# ----------------------------------------------------------------------------- the seed loop and the tuned loop
def stock_convolutions() -> None:
    """The seed network as torch.nn runs it, in this process: vaetui's convolutions with torch.nn's own backward
    (oneDNN computes the bias gradient too) and its BatchNorm and activations as PyTorch's ops (not the fused
    kernel, which NormBlock would otherwise use for a bf16 loop)."""
    import vaetui.models.bnact
    import vaetui.models.convgrad

    vaetui.models.convgrad._split = lambda x, bias: False
    vaetui.models.bnact.applies = lambda x, norm, act: False


def plain_worker(root: str, size: tuple[int, int], steps: int, threads: int, tuned: bool, precision: str) -> dict:
    import contextlib

    import torch
    import torch.nn.functional as nnF
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from vaetui.data.celeba import load_index
    from vaetui.models.vae import ConvVAE

    stock_convolutions()  # the seed's network: torch.nn's convolutions, as they come
    torch.set_num_threads(threads)
    torch.manual_seed(100)
    index = load_index(root)
    folder = index.folder / "img_align_celeba"
    tf = [transforms.ToTensor()] if size == (218, 178) else [transforms.Resize(size), transforms.ToTensor()]
    trfm = transforms.Compose(tf)

    class Data(Dataset):
        def __init__(self, files):
            self.files = files

        def __len__(self):
            return len(self.files)

        def __getitem__(self, i):
            return trfm(Image.open(folder / self.files[i])), 0

    class SeedVAE(ConvVAE):
        """The seed's forward: sigmoid on the decoder, images out."""

        def forward(self, x):
            mu, logvar = self.encode(x)
            std = torch.exp(0.5 * logvar)
            z = torch.randn_like(std).mul(std).add_(mu)
            return torch.sigmoid(self.decode_logits(z).float()), mu.float(), logvar.float()

    def vae_loss(x_recon, x, mu, logvar):
        bce = nnF.binary_cross_entropy(x_recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()).mean(dim=0)
        return bce, kld * 0.3

    model = SeedVAE(size, hidden=32, latent=100, init="default")
    if tuned:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=0)
    loader = DataLoader(Data(index.files["train"]), batch_size=64, shuffle=True, drop_last=True)
    model.train()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    times, n = [], 0
    it = iter(loader)
    for step in range(steps + 2):
        t = time.perf_counter()
        try:
            imgs, _ = next(it)
        except StopIteration:
            it = iter(loader)
            imgs, _ = next(it)
        if tuned:
            imgs = imgs.contiguous(memory_format=torch.channels_last)
        with autocast():
            imgs_recon, mu, logvar = model(imgs)
        bce, kld = vae_loss(imgs_recon, imgs, mu, logvar)
        loss_t = kld + bce
        _ = loss_t.item()  # the seed reads the loss back every step
        optimizer.zero_grad()
        loss_t.backward()
        optimizer.step()
        if step >= 2:  # two steps warm up
            times.append(time.perf_counter() - t)
            n += imgs.shape[0]
    return {"images_per_s": n / sum(times), "step_times": times, "flops": forward_flops(model, size)}


# ----------------------------------------------------------------------------- vaetui
def engine_worker(root: str, size: tuple[int, int], steps: int, threads: int, precision: str, extra: dict) -> dict:
    from vaetui.runtime import tune_allocator

    tune_allocator()
    from vaetui.config.presets import preset
    from vaetui.config.resolve import with_overrides
    from vaetui.train.engine import Trainer
    from vaetui.runs.events import FailedEvent, StepEvent
    from vaetui.models.vae import ConvVAE
    from vaetui.runs.store import RunStore

    cfg = with_overrides(preset("seed"), {
        "data_root": root, "size": f"{size[0]}x{size[1]}", "max_steps": steps + 2, "log_every": 1,
        "image_every": 10**6, "checkpoint_every": 10**6, "precision": precision, "threads": threads,
        "dataset_size": None, **extra,
    })
    runs = tempfile.mkdtemp(prefix="vaetui-bench-runs-")
    atexit.register(shutil.rmtree, runs, ignore_errors=True)  # its checkpoints: ~480 MB a run at 218x178
    store = RunStore(runs, include_demo=False)
    run = store.create(cfg, "bench")
    times, warmup = [], 0.0
    for event in Trainer(cfg, run).run():
        if isinstance(event, FailedEvent):
            raise SystemExit(event.error)
        if isinstance(event, StepEvent):
            if event.step <= 2:
                warmup = event.elapsed  # the first two steps: where torch.compile compiles
            else:
                times.append(64 / event.images_per_s)
    return {"images_per_s": 64 * len(times) / sum(times), "step_times": times, "warmup": warmup,
            "flops": forward_flops(ConvVAE(size, 32, 100), size)}


def run_worker(worker: str, root: str, size: str, steps: int, threads: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", worker, "--root", root, "--size", size, "--steps", str(steps),
           "--threads", str(threads)]
    worker_env = {**env, **(ALLOCATOR_ENV if worker.startswith("tuned") else {})}
    meter = LoadMeter()
    out = subprocess.run(cmd, env=worker_env, capture_output=True, text=True)
    others = meter.others()  # a child's CPU is in /proc/stat but not in os.times() until it is reaped
    if out.returncode != 0:
        print(out.stderr[-3000:])
        raise SystemExit(f"{worker} worker failed")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    child = result.pop("cpu_seconds")
    result["others"] = max(0.0, others - child / max(result.pop("wall"), 1e-9))
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12, help="timed steps at the seed's size")
    ap.add_argument("--small-steps", type=int, default=60, help="timed steps at 64x64")
    ap.add_argument("--sizes", default="218x178,64x64")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--n", type=int, default=700, help="fake CelebA images to generate")
    ap.add_argument("--workers", default=",".join(WORKERS), help="also vaetui-fp32-compile, vaetui-bf16-compile, "
                    "vaetui-fp32-stockconv, vaetui-bf16-stockconv (torch.nn's convolution backward)")
    ap.add_argument("--rounds", type=int, default=3, help="each worker this often, interleaved: medians are shown")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        h, w = map(int, args.size.split("x"))
        t0, c0 = time.monotonic(), os.times()
        kind, _, precision = args.worker.partition("-")
        if kind == "seed":
            out = plain_worker(args.root, (h, w), args.steps, args.threads, tuned=False, precision="fp32")
        elif kind == "tuned":
            out = plain_worker(args.root, (h, w), args.steps, args.threads, tuned=True, precision=precision)
        else:
            precision, _, option = precision.partition("-")
            if option == "stockconv":
                stock_convolutions()
            out = engine_worker(args.root, (h, w), args.steps, args.threads, precision,
                                {"compile": True} if option == "compile" else {})
        c1 = os.times()
        out["cpu_seconds"] = (c1.user + c1.system) - (c0.user + c0.system)
        out["wall"] = time.monotonic() - t0
        print(json.dumps(out))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake datasets live there
    from fakes import make_fake_celeba

    tmp = tempfile.mkdtemp(prefix="vaetui-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    print(f"generating {args.n} fake CelebA JPEGs in {tmp} ...", flush=True)
    make_fake_celeba(tmp, n=args.n)
    env = {**os.environ, "VAETUI_CACHE_DIR": str(Path(tmp) / "cache")}
    peaks = {p: matmul_peak(args.threads, p) for p in ("fp32", "bf16")}
    print(f"matmul peak (2048², {args.threads} threads): fp32 {peaks['fp32']:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16']:.3g} GFLOP/s; load before: {os.getloadavg()[0]:.2f}")
    workers = args.workers.split(",")
    for size in args.sizes.split(","):
        steps = args.steps if size == "218x178" else args.small_steps
        subprocess.run([sys.executable, "-m", "vaetui", "data", "info", "--data", "celeba", "--data-root", tmp,
                        "--size", size], env=env, capture_output=True)  # build the cache outside the timed runs
        rounds: dict[str, list[dict]] = {w: [] for w in workers}
        for _ in range(args.rounds):  # interleaved: a slow minute of the host slows every worker alike
            for w in workers:
                rounds[w].append(run_worker(w, tmp, size, steps, args.threads, env))
        report(size, steps, args, rounds, peaks)
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


def report(size, steps, args, rounds, peaks) -> None:
    median = {w: statistics.median(r["images_per_s"] for r in rs) for w, rs in rounds.items()}
    seed = median.get("seed")
    print(f"\n{size}, batch 64, {args.threads} threads, {steps} timed steps, {args.rounds} interleaved rounds "
          "(images/s: median, and the range)")
    print(f"  {'':<20} {'images/s':>9} {'range':>13} {'x seed':>7} {'x tuned':>8} {'% peak':>7} {'p90/p10':>8}  "
          f"{'warm-up':>8}  other load")
    for w, rs in rounds.items():
        precision = "bf16" if "bf16" in w else "fp32"
        tuned = median.get(f"tuned-{precision}")
        m = median[w]
        gflops = m * 3 * rs[0]["flops"] / 1e9
        spreads = []
        for r in rs:
            t = sorted(r["step_times"])
            spreads.append(t[int(0.9 * (len(t) - 1))] / t[int(0.1 * (len(t) - 1))])
        others = max(r["others"] for r in rs)
        lo, hi = min(r["images_per_s"] for r in rs), max(r["images_per_s"] for r in rs)
        warm = "/".join(f"{r['warmup']:.0f}s" for r in rs) if "warmup" in rs[0] else ""
        print(f"  {w:<20} {m:9.1f} {lo:6.1f}-{hi:<6.1f} {m / seed if seed else float('nan'):7.2f} "
              f"{m / tuned if tuned else float('nan'):8.2f} {100 * gflops / peaks[precision]:6.0f}% "
              f"{statistics.median(spreads):8.2f}  {warm:>8}  {others:.2f} cores"
              + ("  DISTURBED" if others > 0.2 else ""))


if __name__ == "__main__":
    main()
