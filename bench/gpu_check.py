"""The GPU path, checked in one go: the seed preset in fp32, bf16 and fp16 (with its GradScaler) on CUDA.

Generates a fake CelebA at the seed's 218x178 (nothing is downloaded), trains N steps of
each precision with pinned, non-blocking host-to-device copies, and prints images/s,
peak GPU memory and the loss after N steps. Run by bench/gpu_check.sh.

    python bench/gpu_check.py [--steps 200] [--batch 64] [--n 2048]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--n", type=int, default=2048, help="fake CelebA images")
    ap.add_argument("--precisions", default="fp32,bf16,fp16")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device is visible: this check needs one (nvidia-smi should list it)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake datasets live there
    import os

    from fakes import make_fake_celeba

    tmp = Path(tempfile.mkdtemp(prefix="vaetui-gpu-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ["VAETUI_CACHE_DIR"] = str(tmp / "cache")
    make_fake_celeba(tmp, n=args.n)
    from vaetui.config.presets import preset
    from vaetui.config.resolve import with_overrides
    from vaetui.train.engine import Trainer
    from vaetui.runs.events import FailedEvent, StartedEvent, StepEvent
    from vaetui.runs.store import RunStore

    name = torch.cuda.get_device_name(0)
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}, seed preset 218x178, batch {args.batch}, "
          f"{args.steps} steps, {args.n} fake CelebA images")
    store = RunStore(tmp / "runs", include_demo=False)
    rows = []
    for precision in args.precisions.split(","):
        cfg = with_overrides(preset("seed"), {"data_root": str(tmp), "device": "cuda", "precision": precision,
                                              "max_steps": args.steps, "log_every": 10, "batch_size": args.batch,
                                              "image_every": 10**6, "checkpoint_every": 10**6, "dataset_size": None})
        torch.cuda.reset_peak_memory_stats()
        rates, last, started = [], None, None
        for event in Trainer(cfg, store.create(cfg, f"gpu-{precision}")).run():
            if isinstance(event, FailedEvent):
                print(f"  {precision}: FAILED {event.error}")
                break
            if isinstance(event, StartedEvent):
                started = event
            if isinstance(event, StepEvent):
                last = event
                if event.step > 20:
                    rates.append(event.images_per_s)
        if last is None:
            continue
        mem = torch.cuda.max_memory_allocated() / 2**20
        rate = statistics.median(rates) if rates else last.images_per_s
        rows.append((precision, rate, mem, last.loss, started.device if started else "?"))
        print(f"  {precision:<5} {rate:8.1f} images/s   peak GPU memory {mem:7.0f} MB   loss after {last.step} steps "
              f"{last.loss:.2f}   ({started.device if started else '?'})", flush=True)
    if len(rows) > 1:
        base = rows[0][3]
        for precision, _, _, loss, _ in rows[1:]:
            print(f"  {precision} loss vs {rows[0][0]}: {100 * (loss - base) / base:+.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
