"""The GPU path, checked in one go: the seed preset in fp32, bf16 and fp16 (with its GradScaler) on CUDA, then every
VAE family at 64x64 and 218x178 with its `vaetui eval` time, then (--full-schedule) the seed's whole schedule.

Generates a fake CelebA at the seed's 218x178 (nothing is downloaded), trains N steps of
each precision with pinned, non-blocking host-to-device copies, and prints images/s,
peak GPU memory and the loss after N steps. Then each family (--families, default all) trains the faces64 preset
on synthetic faces for --family-steps steps at the device's auto precision: images/s (ratio against vae), peak
memory, and its loss at the start and the end (it must fall); the same at 218x178 (the seed preset's network,
--family-sizes); and each 64x64 family's evaluation with `vaetui eval`'s defaults (1,024 test images, k = 64,
disentanglement on 4,096), as the command runs it on the device. With --full-schedule, the seed preset's whole
schedule (50 epochs over the training split of --n fake CelebA images: --n 37500 gives the seed's 30,000) to its
end: wall time, images/s and the last validation loss (target: <= 5 minutes on one current datacenter GPU). Run by
bench/gpu_check.sh.

    python bench/gpu_check.py [--steps 200] [--batch 64] [--n 2048] [--families vae,hvae] [--family-steps 200]
                              [--family-sizes 64x64,218x178] [--no-eval] [--full-schedule --n 37500]
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
    ap.add_argument("--family-sizes", default="64x64,218x178")
    ap.add_argument("--no-eval", action="store_true", help="skip each family's evaluation")
    ap.add_argument("--full-schedule", action="store_true", help="then the seed's 50 epochs to their end")
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
    if args.full_schedule:
        full_schedule(store, tmp, args)
    return 0


def families(store, args) -> None:
    """Each family on CUDA at each size (64x64: faces64 on synthetic faces; 218x178: the seed preset's network on
    synthetic faces): images/s against vae, peak memory, its loss falling; then each 64x64 run's evaluation."""
    import time

    import torch

    from vaetui.config.presets import preset
    from vaetui.config.resolve import with_overrides
    from vaetui.config.settings import MODELS
    from vaetui.runs.events import FailedEvent, StepEvent
    from vaetui.train.engine import Trainer

    names = args.families.split(",") if args.families else list(MODELS)
    cuda = torch.cuda.is_available()  # (it is, when run as the GPU check; on a CPU this part alone smoke-runs)
    trained = []
    for size in args.family_sizes.split(","):
        base_preset = "faces64" if size == "64x64" else "seed"
        print(f"families at {size} ({base_preset}'s network, synthetic), batch {args.batch}, {args.family_steps} "
              f"steps, precision auto")
        base = None
        for model in names:
            cfg = with_overrides(preset(base_preset), {
                "model": model, "data": "synthetic", "size": size, "device": "cuda" if cuda else "cpu",
                "max_steps": args.family_steps, "log_every": 10, "batch_size": args.batch, "image_every": 10**6,
                "checkpoint_every": 10**6, "dataset_size": 8192, "prior_fraction": 0.3})
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            steps, run = [], store.create(cfg, f"family-{model}-{size}")
            for event in Trainer(cfg, run).run():
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
            if size == "64x64":
                trained.append((model, run.name))
    if args.no_eval or not trained:
        return
    from vaetui.data import open_split
    from vaetui.metrics.likelihood import evaluate
    from vaetui.runs.checkpoint import open_model
    from vaetui.runtime import resolve_precision

    print("vaetui eval's defaults on each 64x64 run (1,024 test images, k = 64, disentanglement on 4,096)")
    base = None
    for model, name in trained:
        t = time.perf_counter()
        loaded = open_model(store.open(name), None, "cuda" if cuda else "cpu")
        device = next(loaded.model.parameters()).device
        split = open_split(loaded.config.data, "test")
        result = evaluate(loaded.model, loaded.config, split, 1024, 64, 0, disentangle_n=4096,
                          precision=resolve_precision(loaded.config.train.precision, device))
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        base = base or (seconds if model == "vae" else None)
        print(f"  {model:<11} {seconds:7.1f} s {f'{seconds / base:.2f}x vae' if base else '':>10}   "
              f"-ELBO {result['per_image']['neg_elbo']:.1f}   IWAE {result['per_image']['iwae_nll']:.1f}", flush=True)


def full_schedule(store, tmp, args) -> None:
    """The seed preset's whole schedule on the fake CelebA to its end: wall time, images/s, the last validation."""
    import time

    from vaetui.config.presets import preset
    from vaetui.config.resolve import with_overrides
    from vaetui.runs.events import EpochEvent, FailedEvent, FinishedEvent, StepEvent
    from vaetui.train.engine import Trainer

    cfg = with_overrides(preset("seed"), {"data_root": str(tmp), "device": "cuda", "precision": "auto",
                                          "log_every": 50, "image_every": 10**6, "dataset_size": None})
    print(f"the seed's schedule: {cfg.train.epochs} epochs, batch {cfg.train.batch_size}, the training split of "
          f"{args.n} fake CelebA images at 218x178", flush=True)
    t0, rates, last = time.perf_counter(), [], None
    for event in Trainer(cfg, store.create(cfg, "full-schedule")).run():
        if isinstance(event, FailedEvent):
            print(f"  FAILED {event.error}")
            return
        if isinstance(event, StepEvent):
            rates.append(event.images_per_s)
        if isinstance(event, EpochEvent):
            last = event
            print(f"  epoch {event.epoch}: valid {event.valid_loss:.1f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if isinstance(event, FinishedEvent):
            break
    wall = time.perf_counter() - t0
    print(f"  {wall:.0f} s for the schedule ({wall / 60:.1f} min; target <= 5 min), median {statistics.median(rates):.0f} "
          f"images/s, last validation {last.valid_loss if last else float('nan'):.1f}")


if __name__ == "__main__":
    sys.exit(main())
