"""Images/s fed to training: the seed's pipeline vs the decode-once cache, same images, one run.

Seed: torchvision-style Dataset (PIL open + ToTensor) through a DataLoader, batch 64,
shuffled, default workers (the assignment's code). vaetui: shuffled batches of 64 from
the memory-mapped cache, converted to float in [0, 1] (what the training loop does).

    python bench/data_speed.py [--n 1000] [--size 218x178]
"""

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from vaetui.config.settings import DataConfig
from vaetui.data import open_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake datasets live there
from fakes import make_fake_celeba  # noqa: E402


class SeedCelebA(Dataset):
    """The seed's data path: one PIL decode and ToTensor per image, every epoch."""

    def __init__(self, folder: Path, files):
        self.paths = [folder / f for f in files]
        self.tf = transforms.Compose([transforms.ToTensor()])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.tf(Image.open(self.paths[i])), 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--root", help="an existing CelebA root (default: a generated fake one)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vaetui-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ.setdefault("VAETUI_CACHE_DIR", os.path.join(tmp, "cache"))
    root = args.root or tmp
    if not args.root:
        print(f"generating {args.n} fake CelebA JPEGs (218x178) in {tmp} ...")
        make_fake_celeba(tmp, n=args.n)
    cfg = DataConfig(source="celeba", root=root, size=(218, 178))
    t = time.perf_counter()
    split = open_split(cfg, "train")
    build = time.perf_counter() - t
    print(f"cache built once: {len(split)} images in {build:.1f}s ({len(split) / build:.0f} images/s, both cores)")

    loader = DataLoader(SeedCelebA(Path(root) / "celeba" / "img_align_celeba", split.files), batch_size=64, shuffle=True)
    t = time.perf_counter()
    seen = 0
    for x, _ in loader:
        seen += x.shape[0]
    seed_rate = seen / (time.perf_counter() - t)

    def cache_feed(to_float: bool) -> float:
        g = torch.Generator().manual_seed(0)
        seen, t = 0, time.perf_counter()
        for _ in range(5):  # several epochs: the steady state training sees
            order = torch.randperm(len(split), generator=g).numpy()
            for b in range(0, len(order) - 63, 64):
                x = split.images(np.sort(order[b : b + 64]))  # as the engine reads a batch
                if to_float:
                    x = x.float().div_(255.0)
                seen += x.shape[0]
        return seen / (time.perf_counter() - t)

    feed, feed_float = cache_feed(False), cache_feed(True)
    print(f"seed pipeline (PIL + ToTensor, DataLoader, batch 64): {seed_rate:8.0f} images/s")
    print(f"vaetui cache, uint8 batches (what the engine moves):  {feed:8.0f} images/s  ratio {feed / seed_rate:.1f}x (target >= 20x)")
    print(f"vaetui cache, plus the float conversion on the CPU:   {feed_float:8.0f} images/s  ratio {feed_float / seed_rate:.1f}x")


if __name__ == "__main__":
    main()
