"""How long `vaetui eval` takes against what its forward passes cost at the training step's own speed, in one run.

`vaetui eval RUN` (defaults: 1,024 test images, k = 64 importance samples, disentanglement on 4,096) runs
about count·(k + 2) decoder passes and count + disentangle_n encoder passes, forward only. This times the
evaluation (`vaetui.metrics.likelihood.evaluate`, the same call the command makes, with each part timed), and,
in the same process, the network's forward throughput in batches of 64 (encoder + decoder, as a training step
runs them: channels_last, BatchNorm on the batch, the run's precision, without the backward): the floor the
evaluation would reach at the training step's speed (evaluation folds BatchNorm into the convolutions, so it can
go below it).

    python bench/eval_speed.py [--run demo] [--rounds 3] [--threads 2] [--n 1024] [--k 64] [--disentangle-n 4096]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def likelihood_context(likelihood, precision):
    """The forward passes' precision, as evaluate runs them (an old tree without it: fp32)."""
    from contextlib import nullcontext

    return likelihood.precision_context(precision, torch.device("cpu")) if hasattr(likelihood, "precision_context") \
        else nullcontext()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="demo")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--disentangle-n", type=int, default=4096)
    ap.add_argument("--precision", default="run", choices=("run", "fp32", "bf16"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from vaetui.data import open_split
    from vaetui.metrics import likelihood
    from vaetui.models.pixels import to_float
    from vaetui.runs.checkpoint import open_model
    from vaetui.runs.store import RunStore

    loaded = open_model(RunStore(args.runs_dir).open(args.run), None)
    model, config = loaded.model, loaded.config
    # the floor: the network as training runs it (BatchNorm on its batch, channels_last), forward only
    import copy

    from vaetui.runs.checkpoint import load_model

    trained = copy.deepcopy(load_model(RunStore(args.runs_dir).open(args.run), None)[0])
    trained.train().to(memory_format=torch.channels_last)
    precision = args.precision
    if precision == "run":  # as vaetui eval does
        from vaetui.train.setup import resolve_precision

        precision = resolve_precision(config.train.precision, torch.device("cpu"))
    split = open_split(config.data, "test")
    x = to_float(split.images(torch.arange(64).numpy()), torch.device("cpu"), channels_last=True)
    evals, floors = [], []
    for r in range(args.rounds):
        t = time.perf_counter()
        import inspect

        old_tree = "precision" not in inspect.signature(likelihood.evaluate).parameters
        kw = {} if old_tree else {"precision": precision}
        result = likelihood.evaluate(model, config, split, args.n, args.k, 0, disentangle_n=args.disentangle_n, **kw)
        evals.append(time.perf_counter() - t)
        with torch.inference_mode(), likelihood_context(likelihood, precision):
            t = time.perf_counter()
            for _ in range(8):
                mu, _ = trained.encode(x)
                trained.decode_logits(mu)
            per_image = (time.perf_counter() - t) / (8 * 64)  # an encoder and a decoder pass
        passes = args.n * (args.k + 2) + args.n + args.disentangle_n  # decoder passes + encoder passes
        floors.append(passes * per_image / 2)  # a pass of either is about half an encode+decode
        print(f"round {r + 1} ({precision}): eval {evals[-1]:.1f} s; its passes at forward throughput {floors[-1]:.1f} s "
              f"({evals[-1] / floors[-1]:.2f}x the floor); -ELBO {result['per_image']['neg_elbo']:.2f}, "
              f"IWAE {result['per_image']['iwae_nll']:.2f}, PSNR {result['psnr']:.3f}, SSIM {result['ssim']:.4f}, "
              f"MIG {result.get('disentanglement', {}).get('mig', float('nan')):.4f}", flush=True)
    print(f"eval median {statistics.median(evals):.1f} s (rounds {', '.join(f'{e:.1f}' for e in evals)}), "
          f"floor median {statistics.median(floors):.1f} s")


if __name__ == "__main__":
    main()
