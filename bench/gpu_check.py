"""The GPU path, checked in one go: the seed preset in fp32, bf16 and fp16 (with its GradScaler) on CUDA, then every
VAE family at 64x64.

Generates a fake CelebA at the seed's 218x178 (nothing is downloaded), trains N steps of
each precision with pinned, non-blocking host-to-device copies, and prints images/s,
peak GPU memory and the loss after N steps. Then each family (--families, default all) trains the faces64 preset
on synthetic faces for --family-steps steps at the device's auto precision: images/s (ratio against vae), peak
memory, and its loss at the start and the end (it must fall). Run by bench/gpu_check.sh.

    python bench/gpu_check.py [--steps 200] [--batch 64] [--n 2048] [--families vae,hvae] [--family-steps 200]
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
    ap.add_argument("--families", default=None, help="comma-separated (default: every family; 'none' skips them)")
    ap.add_argument("--family-steps", type=int, default=200)
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
    if args.families != "none":
        families(store, args)
    return 0


def families(store, args) -> None:
    """Each family on faces64 (synthetic, 64x64) on CUDA: images/s against vae, peak memory, its loss falling."""
    import torch

    from vaetui.config.presets import preset
    from vaetui.config.resolve import with_overrides
    from vaetui.config.settings import MODELS
    from vaetui.runs.events import FailedEvent, StepEvent
    from vaetui.train.engine import Trainer

    names = args.families.split(",") if args.families else list(MODELS)
    cuda = torch.cuda.is_available()  # (it is, when run as the GPU check; on a CPU this part alone smoke-runs)
    print(f"families at 64x64 (faces64, synthetic), batch {args.batch}, {args.family_steps} steps, precision auto")
    base = None
    for model in names:
        cfg = with_overrides(preset("faces64"), {"model": model, "device": "cuda" if cuda else "cpu", "max_steps": args.family_steps,
                                                 "log_every": 10, "batch_size": args.batch, "image_every": 10**6,
                                                 "checkpoint_every": 10**6, "dataset_size": 8192,
                                                 "prior_fraction": 0.3})
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        steps = []
        for event in Trainer(cfg, store.create(cfg, f"family-{model}")).run():
            if isinstance(event, FailedEvent):
                print(f"  {model:<11} FAILED {event.error}")
            if isinstance(event, StepEvent):
                steps.append(event)
        if len(steps) < 3:
            continue
        rate = statistics.median(e.images_per_s for e in steps[2:])
        base = base or (rate if model == "vae" else None)
        ratio = f"{rate / base:.2f}x vae" if base else ""
        mem = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
        print(f"  {model:<11} {rate:8.1f} images/s {ratio:>10}   peak GPU memory {mem:6.0f} MB   loss "
              f"{steps[0].loss:.1f} -> {steps[-1].loss:.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
