"""Training images/s: the seed's loop vs vaetui's engine, each in its own process, one run.

The seed loop is a faithful re-implementation of the assignment: its Encoder/Decoder
(sigmoid output, F.binary_cross_entropy summed), a PIL + ToTensor DataLoader (batch 64,
shuffle, no workers), the default allocator, fp32, Adam 1e-4. vaetui runs its Trainer on
the same images through the decode-once cache, in fp32 and bf16. Achieved GFLOP/s is
set against the machine's fp32 matmul peak measured in the same run.

    python bench/train_speed.py [--steps 4] [--sizes 218x178,64x64] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


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


def matmul_peak(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 2048**3 / best / 1e9


# ----------------------------------------------------------------------------- seed loop
def seed_worker(root: str, size: tuple[int, int], steps: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as nnF
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from vaetui.data.celeba import load_index
    from vaetui.model import ConvVAE

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
            return torch.sigmoid(self.decode_logits(z)), mu, logvar

    def vae_loss(x_recon, x, mu, logvar):
        bce = nnF.binary_cross_entropy(x_recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()).mean(dim=0)
        return bce, kld * 0.3

    model = SeedVAE(size, hidden=32, latent=100, init="default")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=0)
    loader = DataLoader(Data(index.files["train"]), batch_size=64, shuffle=True)
    model.train()
    times, n = [], 0
    it = iter(loader)
    for step in range(steps + 1):
        t = time.perf_counter()
        imgs, _ = next(it)
        imgs_recon, mu, logvar = model(imgs)
        bce, kld = vae_loss(imgs_recon, imgs, mu, logvar)
        loss_t = kld + bce
        _ = loss_t.item()  # the seed reads the loss back every step
        optimizer.zero_grad()
        loss_t.backward()
        optimizer.step()
        if step > 0:  # the first step warms up
            times.append(time.perf_counter() - t)
            n += imgs.shape[0]
    return {"images_per_s": n / sum(times), "flops": forward_flops(model, size)}


# ----------------------------------------------------------------------------- vaetui
def engine_worker(root: str, size: tuple[int, int], steps: int, threads: int, precision: str) -> dict:
    from vaetui.perf import tune_allocator

    tune_allocator()
    from vaetui.config import preset, with_overrides
    from vaetui.engine import Trainer
    from vaetui.events import FailedEvent, StepEvent
    from vaetui.model import ConvVAE
    from vaetui.runs import RunStore

    cfg = with_overrides(preset("seed"), {
        "data_root": root, "size": f"{size[0]}x{size[1]}", "max_steps": steps + 1, "log_every": 1,
        "image_every": 10**6, "checkpoint_every": 10**6, "precision": precision, "threads": threads,
        "dataset_size": None,
    })
    store = RunStore(tempfile.mkdtemp(prefix="vaetui-bench-runs-"), include_demo=False)
    run = store.create(cfg, "bench")
    rates = []
    for event in Trainer(cfg, run).run():
        if isinstance(event, FailedEvent):
            raise SystemExit(event.error)
        if isinstance(event, StepEvent) and event.step > 1:
            rates.append(event.images_per_s)
    n = len(rates)
    return {"images_per_s": n / sum(1 / r for r in rates), "flops": forward_flops(ConvVAE(size, 32, 100), size)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--sizes", default="218x178,64x64")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--n", type=int, default=700, help="fake CelebA images to generate")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        h, w = map(int, args.size.split("x"))
        if args.worker == "seed":
            out = seed_worker(args.root, (h, w), args.steps, args.threads)
        else:
            out = engine_worker(args.root, (h, w), args.steps, args.threads, args.worker)
        print(json.dumps(out))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake datasets live there
    from fakes import make_fake_celeba

    tmp = tempfile.mkdtemp(prefix="vaetui-bench-")
    print(f"generating {args.n} fake CelebA JPEGs in {tmp} ...", flush=True)
    make_fake_celeba(tmp, n=args.n)
    env = {**os.environ, "VAETUI_CACHE_DIR": str(Path(tmp) / "cache")}
    peak = matmul_peak(args.threads)
    print(f"fp32 matmul peak (2048^2, {args.threads} threads): {peak:.1f} GFLOP/s")
    for size in args.sizes.split(","):
        results = {}
        for worker in ("seed", "fp32", "bf16"):
            cmd = [sys.executable, __file__, "--worker", worker, "--root", tmp, "--size", size,
                   "--steps", str(args.steps), "--threads", str(args.threads)]
            if worker != "seed":  # build the cache outside the timed run
                subprocess.run([sys.executable, "-m", "vaetui", "data", "info", "--data", "celeba", "--data-root", tmp,
                                "--size", size], env=env, capture_output=True)
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr)
                raise SystemExit(f"{worker} worker failed")
            results[worker] = json.loads(out.stdout.strip().splitlines()[-1])
        base = results["seed"]["images_per_s"]
        print(f"\n{size}, batch 64, {args.threads} threads, {args.steps} timed steps each")
        for worker, label in (("seed", "seed loop (PIL+ToTensor, fp32)"), ("fp32", "vaetui engine fp32"),
                              ("bf16", "vaetui engine bf16")):
            r = results[worker]
            gflops = r["images_per_s"] * 3 * r["flops"] / 1e9  # forward + backward ~ 3x forward
            print(f"  {label:<32} {r['images_per_s']:7.1f} images/s  {r['images_per_s'] / base:5.2f}x  "
                  f"{gflops:6.1f} GFLOP/s ({100 * gflops / peak:.0f}% of fp32 peak)")


if __name__ == "__main__":
    main()
