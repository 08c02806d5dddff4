"""`vaetui eval` (metrics of a checkpoint, stored with their protocol) and `vaetui plot` (learning curves)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaetui.cli.args import (
    SEED_MAX, SPLITS, add_checkpoint, add_run, add_runs_dir, float_in, int_in, out_file, progress_printer,
)
from vaetui.config.settings import SAMPLERS
from vaetui.errors import VaeError
from vaetui.runs.smoothing import X_AXES


def cmd_eval(args: argparse.Namespace) -> int:
    """Metrics of a checkpoint on a split, stored in the run with their protocol."""
    import json

    from vaetui.cli.explore import load
    from vaetui.data import open_split
    from vaetui.metrics.likelihood import evaluate

    if args.inception_weights and not args.inception_weights.is_file():
        from vaetui.metrics.features import INCEPTION_HINT

        raise VaeError(f"--inception-weights {args.inception_weights}: no such file. {INCEPTION_HINT}")
    run, model, config, path = load(args)
    own = Path(path).resolve().parent == run.path.resolve()
    if not own and (Path(path).resolve().parent / "config.json").exists():
        other = Path(path).resolve().parent.name
        raise VaeError(f"--checkpoint {path} is run {other}'s: evaluate it as that run's "
                       f"(vaetui eval {other} --checkpoint {Path(path).stem.removeprefix('ckpt-')})")
    split = open_split(config.data, args.split, progress=progress_printer())
    precision = args.precision
    if precision == "run":  # the run's own, as it resolves on this machine (bf16 where native)
        from vaetui.train.setup import resolve_precision

        precision = resolve_precision(config.train.precision, next(model.parameters()).device)
    result = evaluate(model, config, split, args.n, args.k, args.seed, progress=progress_printer(),
                      disentangle_n=args.disentangle_n, precision=precision)
    if args.inception_weights and not args.samples:
        raise VaeError("--inception-weights measures samples: add --samples")
    if args.sampler != "prior" and not args.samples:
        raise VaeError("--sampler chooses where --samples come from: add --samples")
    if args.samples:
        from vaetui.metrics.fidelity import sample_quality
        from vaetui.pictures.latent_space import sampler_mixture

        mixture = sampler_mixture(run, model, config, path, args.sampler)
        result["samples"] = sample_quality(model, config, split, args.samples_n, args.seed, args.inception_weights,
                                           progress=progress_printer(), mixture=mixture, sampler=args.sampler)
    protocol = {"run": run.name, "checkpoint": path.name, "split": args.split, "count": min(args.n, len(split)),
                "k": args.k, "seed": args.seed, "disentangle_n": min(args.disentangle_n, len(split)),
                **({"sampler": args.sampler} if args.sampler != "prior" else {})}
    result = {"protocol": protocol, **result}
    # Results are stored under the checkpoint's run, by its name: a loose file is measured, never filed as if it
    # were one of this run's checkpoints.
    stored = None if run.read_only or not own else run.save_eval(result)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    pi, pd = result["per_image"], result["per_dim"]
    print(f"{run.name} ({path.name}) on {protocol['count']} {args.split} images, k={args.k}, seed {args.seed}")
    print(f"  -ELBO     {pi['neg_elbo']:12.2f} nats/image  = {pd['neg_elbo_nats']:.4f} nats/dim = {pd['neg_elbo_bits']:.4f} bits/dim")
    print(f"    recon   {pi['recon']:12.2f}    KL {pi['kl']:.2f}")
    print(f"  IWAE NLL  {pi['iwae_nll']:12.2f} nats/image  = {pd['iwae_nats']:.4f} nats/dim = {pd['iwae_bits']:.4f} bits/dim")
    if config.model.likelihood == "bernoulli":
        print("    (Bernoulli likelihood on continuous pixels: not a density over 8-bit images, so these bits/dim "
              "do not compare with published ones)")
    elif "neg_elbo_discrete_bits" in pd:
        print(f"    discretised 8-bit -ELBO: {pd['neg_elbo_discrete_bits']:.4f} bits/dim (comparable across models)")
    if result.get("latent_kind") == "codes":
        print(f"  PSNR {result['psnr']:.2f} dB   SSIM {result['ssim']:.4f}   (a discrete code: KL is −log p(codes) "
              f"under the learned prior; active units, per-dimension KL and disentanglement are not defined)")
    else:
        print(f"  PSNR {result['psnr']:.2f} dB   SSIM {result['ssim']:.4f}   active units "
              f"{result['active_units']}/{result['latent']}")
        ranked = sorted(enumerate(result["kl_per_dim"]), key=lambda t: -t[1])[:8]
        print("  KL per dim (top): " + ", ".join(f"z{j} {v:.2f}" for j, v in ranked))
    if "probe_r2" in result:
        print("  linear probe R² μ -> factor: " + ", ".join(f"{n} {v:.2f}" for n, v in result["probe_r2"].items()))
    if "disentanglement" in result:
        from vaetui.metrics.disentangle import summary_line

        dis = result["disentanglement"]
        what = "the true factors" if dis["kind"] == "factors" else f"{len(dis['factors'])} attributes"
        print(f"  disentanglement on {dis['count']} images vs {what}: {summary_line(dis)}")
        print(f"    ({dis['bins']} {dis['binning']} bins for MIG; DCI: {dis['regressor']}, {dis['split']})")
    if "samples" in result:
        from vaetui.metrics.fidelity import samples_summary

        print("  samples: " + samples_summary(result["samples"], detail=True))
    if stored:
        print(f"  stored in {stored}")
    elif not own:
        print(f"  not stored: {path} is not one of run {run.name}'s checkpoints")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """The seed's learning curves of one or more runs, or (--rd) their rate against distortion."""
    from vaetui.pictures import plots
    from vaetui.runs.store import RunStore

    store = RunStore(args.runs_dir)
    if args.kl_dims:
        return _plot_kl_dims(args, store)
    if args.smooth and not args.rd:
        args.steps = True  # what a smoothing acts on: the per-step loss
    histories = [(name, store.open(name).history(steps="all" if args.steps or args.x == "time" else "none"))
                 for name in args.runs]  # every run checked before drawing
    if args.rd:
        if args.steps or args.log_y or args.smooth or args.x != "step":
            raise VaeError("--rd draws KL against reconstruction: drop --steps/--log-y/--smooth/--x "
                           "(see vaetui plot --help)")
        points = []
        for name, h in histories:
            point = plots.rd_point(name, h)
            if point is None:
                raise VaeError(f"run {name} has no validation epoch yet: train it for an epoch first")
            points.append(point)
        plots.rate_distortion(points, f"rate–distortion: {len(points)} run{'s' * (len(points) > 1)}", args.out)
        for p in points:
            print(f"{p.label}: KL {p.kl:.2f}  reconstruction {p.recon:.2f} nats/image (validation, last epoch)")
        print(f"wrote {args.out}: rate against distortion of {', '.join(args.runs)}")
        return 0
    steps = args.steps
    for name, h in histories:
        if not h.epochs and not len(h.series["loss"]):
            if h.last is None:
                raise VaeError(f"run {name} has no metrics yet: train it first")
            steps = True  # no epoch has ended yet, but its steps have losses: draw those
    if steps and not args.steps:
        print("no epoch has ended yet in " + ", ".join(n for n, h in histories if not h.epochs)
              + ": drawing the losses of every step")
        histories = [(name, store.open(name).history(steps="all")) for name in args.runs]
    plots.learning_curves(histories, args.out, steps, args.log_y, args.smooth, args.x)
    print(f"wrote {args.out}: learning curves of {', '.join(args.runs)}")
    return 0


def _plot_kl_dims(args: argparse.Namespace, store) -> int:
    """vaetui plot RUN --kl-dims: the monitor's KL heat map as a file."""
    from vaetui.models.losses import schedule_marks
    from vaetui.pictures import plots

    if len(args.runs) != 1 or args.rd or args.steps or args.smooth:
        raise VaeError("--kl-dims draws one run alone: vaetui plot RUN --kl-dims --out kl.png")
    run = store.open(args.runs[0])
    h = run.history(steps="all")
    if not len(h.kl_dims):
        raise VaeError(f"run {run.name} has logged no KL per dimension (a discrete code, or a run older than it): "
                       f"train it further, or plot its curves")
    config = run.config()
    planned = config.train.epochs * h.steps_per_epoch  # what the cycles split (as the trainer's β does), not --max-steps
    marks = schedule_marks(config.train.kl_warmup, config.train.kl_cycles, planned)
    plots.kl_heatmap(run.name, h.kl_dims.steps(), h.kl_dims.matrix(), marks, args.out, config.train.free_bits)
    print(f"wrote {args.out}: KL per dimension of {run.name} over {len(h.kl_dims)} step events")
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="metrics of a checkpoint: -ELBO, IWAE bound, bits/dim, PSNR, SSIM, active units")
    add_run(p)
    add_checkpoint(p)
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--n", type=int_in(1, 10**7), default=1024, help="images (the first N of the split)")
    p.add_argument("--k", type=int_in(1, 100000), default=64, help="importance samples for the IWAE bound")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=0)
    p.add_argument("--disentangle-n", type=int_in(0, 10**7), default=4096, metavar="N",
                   help="images for MIG, DCI and SAP against the known factors or attributes (0: skip)")
    p.add_argument("--samples", action="store_true",
                   help="also sample quality: FD-attr, KID, precision/recall of prior samples vs the split's images")
    p.add_argument("--samples-n", type=int_in(10, 10**6), default=2000, metavar="N", help="samples (and images) compared")
    p.add_argument("--sampler", choices=SAMPLERS, default="prior",
                   help="where --samples' codes come from: the prior, the run's ex-post GMM, or the VampPrior "
                        "(vaetui sample --sampler)")
    p.add_argument("--inception-weights", type=Path, metavar="FILE",
                   help="a local pt_inception-2015-12-05 weights file: adds standard FID/KID (never downloaded)")
    p.add_argument("--precision", choices=("run", "fp32", "bf16"), default="run",
                   help="the forward passes' precision: run: the run's own (bf16 autocast where this machine computes "
                        "it natively and the run trained so); the metrics are summed in fp32 (default: %(default)s)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("plot", help="write learning curves (train and validation loss) of runs, or --rd their rate against distortion")
    p.add_argument("runs", metavar="RUN", nargs="+")
    p.add_argument("--out", required=True, type=out_file(".png", ".pdf", ".svg"), metavar="FILE.png")
    p.add_argument("--steps", action="store_true", help="also draw the per-step training loss")
    p.add_argument("--log-y", action="store_true")
    p.add_argument("--smooth", type=float_in(0, 0.999), default=0.0, metavar="W",
                   help="smooth the per-step loss: a debiased exponential moving average of weight W in [0, 0.999] "
                        "(TensorBoard's slider; 0.9 is a good start), restarted at resumes and roll-backs, the raw "
                        "points faint beneath (implies --steps)")
    p.add_argument("--x", choices=X_AXES, default="step",
                   help="x axis: step, epoch, or time (hours since the run's first step) (default: %(default)s)")
    p.add_argument("--kl-dims", action="store_true",
                   help="KL per latent dimension over one run, as a heat map (the monitor's k), warm-up and cycles "
                        "marked")
    p.add_argument("--rd", action="store_true",
                   help="rate against distortion instead: validation KL vs reconstruction per run (the β-VAE picture)")
    add_runs_dir(p)
    p.set_defaults(func=cmd_plot)
