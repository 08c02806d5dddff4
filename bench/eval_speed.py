"""How long `vaetui eval` takes against what its forward passes cost at the training step's own speed, in one run.

`vaetui eval RUN` (defaults: 1,024 test images, k = 64 importance samples, disentanglement on 4,096) runs
about count·(k + 2) decoder passes and count + disentangle_n encoder passes, forward only. This times the
evaluation (`vaetui.metrics.likelihood.evaluate`, the same call the command makes, with each part timed), and,
in the same process, the network's forward throughput in batches of 64 (encoder + decoder, as a training step
runs them: channels_last, BatchNorm on the batch, the run's precision, without the backward): the floor the
evaluation would reach at the training step's speed (evaluation folds BatchNorm into the convolutions, so it can
go below it).

    python bench/eval_speed.py [--run demo] [--rounds 3] [--threads 2] [--n 1024] [--k 64] [--disentangle-n 4096]

With --explore: instead, the explore screens' first pictures of a 218x178 seed-network run (made here, 2 training
steps): the reconstructions screen's 8 and the generate screen's 32 samples (vaetui.pictures.figures, what the
screens and `vaetui reconstruct`/`sample` call), the model as `load_model` gives it against as `open_model` readies
it, interleaved over the rounds, the checkpoint's loading included.

With --attribute-net: instead, the attribute network's one-time training (vaetui.metrics.features) on the run's data
and at --size, --attr-images images for one epoch, in fp32 and in this machine's native precision, against the loop
it replaced in the same run (torch.nn's convolutions, NCHW, fp32), interleaved over the rounds; the full protocol's
time (3 epochs of 20,000 images) is scaled from it.
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
    ap.add_argument("--attribute-net", action="store_true")
    ap.add_argument("--explore", action="store_true")
    ap.add_argument("--size", default=None, help="HxW for --attribute-net (default: the run's)")
    ap.add_argument("--attr-images", type=int, default=1280)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.attribute_net:
        return attribute_net_speed(args)
    if args.explore:
        return explore_speed(args)
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


def plain_attribute_loop(split, protocol) -> None:
    """The attribute network's training as it was: torch.nn's convolutions, NCHW, fp32 (the baseline)."""
    import numpy as np
    from torch import nn

    from vaetui.metrics import features
    from vaetui.models.pixels import to_float

    n = min(protocol["images"], len(split))
    torch.manual_seed(protocol["seed"])
    probe, kind = features.labels_of(split, np.arange(1))
    net = features.AttributeNet(probe.shape[1])
    for i, m in enumerate(net.body):
        if isinstance(m, nn.Conv2d):
            plain = nn.Conv2d(m.in_channels, m.out_channels, 4, 2, 1)
            plain.load_state_dict(m.state_dict())
            net.body[i] = plain
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss() if kind == "regression" else nn.BCEWithLogitsLoss()
    g = torch.Generator().manual_seed(protocol["seed"])
    batch = protocol["batch"]
    for _ in range(protocol["epochs"]):
        order = torch.randperm(n, generator=g).numpy()
        for b in range(max(1, n // batch)):
            idx = np.sort(order[b * batch: (b + 1) * batch])
            loss = loss_fn(net(to_float(split.images(idx), channels_last=False)), features.labels_of(split, idx)[0])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def explore_speed(args) -> None:
    import subprocess
    import sys
    import tempfile

    from vaetui.pictures.figures import reconstructions, samples
    from vaetui.runs.checkpoint import load_model, open_model
    from vaetui.runs.store import RunStore
    from vaetui.runtime import tune_allocator

    tune_allocator()
    with tempfile.TemporaryDirectory() as runs:
        subprocess.run([sys.executable, "-m", "vaetui", "train", "--preset", "seed", "--data", "synthetic",
                        "--dataset-size", "256", "--valid-size", "64", "--max-steps", "2", "--name", "s218",
                        "--runs-dir", runs, "--log-format", "json"], check=True, capture_output=True)
        run = RunStore(runs).open("s218")
        loaders = {"as loaded (load_model: fp32, NCHW, BatchNorm)": lambda: load_model(run)[:2],
                   "readied (open_model)": lambda: (lambda m: (m.model, m.config))(open_model(run))}
        times = {name: {"recon": [], "samples": []} for name in loaders}
        pictures = {}
        for r in range(args.rounds + 1):  # the first round warms up
            for name, load in loaders.items():
                t = time.perf_counter()
                model, config = load()
                pictures[name, "recon"] = reconstructions(model, config, "valid", 8).image
                t_recon = time.perf_counter() - t
                t = time.perf_counter()
                pictures[name, "samples"] = samples(model, 32, 0).image
                t_samples = time.perf_counter() - t
                if r:
                    times[name]["recon"].append(t_recon)
                    times[name]["samples"].append(t_samples)
        import numpy as np

        print("218x178 seed network, 2 threads: the load and the first picture (median of the rounds)")
        base = next(iter(times.values()))
        for name, ts in times.items():
            print(f"  {name:<48} reconstructions (8, load included) {statistics.median(ts['recon']):.3f} s "
                  f"({', '.join(f'{t:.3f}' for t in ts['recon'])}), {statistics.median(base['recon']) / statistics.median(ts['recon']):.2f}x; "
                  f"32 samples {statistics.median(ts['samples']):.3f} s "
                  f"({', '.join(f'{t:.3f}' for t in ts['samples'])}), "
                  f"{statistics.median(base['samples']) / statistics.median(ts['samples']):.2f}x")
        a, b = (np.asarray(pictures[n, "samples"], dtype=np.int16) for n in loaders)
        print(f"  the two sample grids differ by at most {int(abs(a - b).max())}/255 a channel, "
              f"mean {float(abs(a - b).mean()):.3f}")


def attribute_net_speed(args) -> None:
    from vaetui.config.resolve import with_overrides
    from vaetui.data import open_split
    from vaetui.metrics import features
    from vaetui.runs.store import RunStore
    from vaetui.runtime import tune_allocator

    tune_allocator()
    config = RunStore(args.runs_dir).open(args.run).config()
    if args.size:
        config = with_overrides(config, {"size": args.size, "dataset_size": max(3 * args.attr_images, 3000)})
    split = open_split(config.data, "train")
    protocol = dict(features.PROTOCOL, images=args.attr_images, epochs=1)
    native = features.native_precision()
    workers = {"plain loop (nn.Conv2d, NCHW, fp32)": lambda p: plain_attribute_loop(split, p),
               "vaetui, fp32": lambda p: features.train_attribute_net(split, None, p, "fp32"),
               f"vaetui, {native} (native)": lambda p: features.train_attribute_net(split, None, p, native)}
    for work in workers.values():  # warm-up: the allocator, oneDNN's kernels
        work(dict(protocol, images=2 * protocol["batch"]))
    times = {name: [] for name in workers}
    for r in range(args.rounds):
        for name, work in workers.items():
            t = time.perf_counter()
            work(protocol)
            times[name].append(time.perf_counter() - t)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    full = features.PROTOCOL["epochs"] * features.PROTOCOL["images"] / args.attr_images
    base = statistics.median(times[next(iter(workers))])
    h, w = config.data.size
    print(f"attribute network at {h}x{w}, {args.attr_images} images, one epoch; the full protocol scaled (x{full:.0f}):")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:<38} {m:6.2f} s (rounds {', '.join(f'{t:.2f}' for t in ts)}) -> {m * full:5.0f} s; "
              f"{base / m:.2f}x the plain loop")


if __name__ == "__main__":
    main()
