"""`vaetui sample | reconstruct | interpolate | latent`: the explore screens' headless twins (same pixels, tested)."""

from __future__ import annotations

import argparse

from vaetui.cli.args import (
    MAX_PICTURE_IMAGES, SEED_MAX, SPLITS, add_checkpoint, add_run, add_runs_dir, float_in, int_in, need, out_file,
    warn,
)
from vaetui.config.settings import SAMPLERS
from vaetui.errors import VaeError

MAX_STEPS, MAX_PAIRS, MAX_RECON = 201, 32, 256


def load(args: argparse.Namespace, name: str | None = None):
    """(run, model, config, checkpoint path) of RUN (or of `name`) at --checkpoint."""
    from vaetui.runs import checkpoint
    from vaetui.runs.store import RunStore

    loaded = checkpoint.open_model(RunStore(args.runs_dir).open(name or args.run), args.checkpoint)
    for w in loaded.warnings:
        warn(w)
    return loaded.run, loaded.model, loaded.config, loaded.path


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Originals over reconstructions of a split, with each image's loss."""
    from vaetui.pictures.figures import reconstructions
    from vaetui.pictures.imaging import save_image

    run, model, config, path = load(args)
    compare = None
    if args.compare:
        _, other_model, other_cfg, _ = load(args, args.compare)
        compare = (other_model, other_cfg)
    fig = reconstructions(model, config, args.split, args.n, args.start, compare, cols=args.cols)
    out = save_image(fig.image, args.out)
    losses = ", ".join(f"{v:.1f}" for v in fig.info["losses"])
    print(f"wrote {out}: {run.name} ({path.name}), {args.split} images {fig.info['indices'][0]}-"
          f"{fig.info['indices'][-1]}, reconstruction loss per image: {losses}")
    if compare:
        mean_a = sum(fig.info["losses"]) / len(fig.info["losses"])
        mean_b = sum(fig.info["compare_losses"]) / len(fig.info["compare_losses"])
        print(f"mean reconstruction loss: {run.name} {mean_a:.1f}, {args.compare} {mean_b:.1f} "
              f"(third row: {args.compare})")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Faces decoded from z ~ N(0, T² I)."""
    from vaetui.pictures.figures import samples
    from vaetui.pictures.imaging import save_image

    from vaetui.config.settings import SAMPLER_NAMES
    from vaetui.pictures.latent_space import sampler_mixture

    run, model, config, path = load(args)
    mixture = sampler_mixture(run, model, config, path, args.sampler)
    out = save_image(samples(model, args.n, args.seed, args.temperature, args.cols, mixture, args.sampler).image,
                     args.out)
    print(f"wrote {out}: {args.n} samples from {run.name} ({path.name}) from {SAMPLER_NAMES[args.sampler]}, "
          f"seed {args.seed}, temperature {args.temperature:g}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Frames along a latent path: a PNG strip (one row a pair) or an animated GIF."""
    from vaetui.models.latent import path_ts
    from vaetui.pictures.figures import interpolation
    from vaetui.pictures.imaging import save_any

    need((args.from_ is None) == (args.to is None),
         "--from and --to go together (two dataset images); or use --seed for random endpoints")
    frames = len(path_ts(args.steps, args.extrapolate))
    need(frames * args.pairs <= MAX_PICTURE_IMAGES, f"{args.pairs} pairs of {frames} frames is more than "
         f"{MAX_PICTURE_IMAGES} images: use fewer --steps or --pairs")
    run, model, config, path = load(args)
    endpoints = (args.from_, args.to) if args.from_ is not None else None
    fig = interpolation(model, config, args.steps, args.mode, args.seed, args.pairs, endpoints, args.extrapolate,
                        args.split)
    gif = args.out.suffix.lower() == ".gif"
    out = save_any(fig.frames if gif else fig.image, args.out)
    norms = ", ".join(f"{v:.2f}" for v in fig.info["norms"][0])
    print(f"wrote {out}: {run.name} ({path.name}), {args.mode}, t = {fig.info['t'][0]:g}..{fig.info['t'][-1]:g}, "
          f"|z| along the path: {norms}")
    return 0


def cmd_latent(args: argparse.Namespace) -> int:
    """The latent screen's picture: traversals of the dimensions ranked by KL, an attribute strip or the scatter."""
    from vaetui.pictures.latent_space import LATENT_IMAGES, encode_latents, latent_view
    from vaetui.pictures.imaging import save_image

    run, model, config, path = load(args)
    encoded = encode_latents(model, config)
    mu, ranking = encoded[0], encoded[4]
    need(args.image < len(mu), f"--image {args.image} is out of range: the latent screen encodes the first "
         f"{len(mu)} validation images (0-{len(mu) - 1})")
    need(args.rank < len(ranking), f"--rank {args.rank} is out of range: the latent has {len(ranking)} dimensions")
    fig = latent_view(model, encoded, args.rank, args.image, args.dims, args.attribute, args.amount, args.scatter)
    out = save_image(fig.image, args.out)
    if fig.info["attr_error"]:
        warn(fig.info["attr_error"])
    shown = ranking[args.rank : args.rank + args.dims]
    lower = "the scatter of μ" if args.scatter else f"{fig.info['attribute']} ×{args.amount:g}" \
        if fig.info["attribute"] else "no attributes"
    print(f"wrote {out}: {run.name} ({path.name}), image {args.image}, ±3σ along "
          + ", ".join(f"z{r['dim']} (KL {r['kl']:.2f})" for r in shown) + f"; below: {lower}")
    active = sum(r["active"] for r in ranking)
    print(f"active {active}/{len(ranking)} on {min(LATENT_IMAGES, len(mu))} validation images; by KL: "
          + " ".join(f"{'*' if r['active'] else ''}z{r['dim']}:{r['kl']:.2f}" for r in ranking))
    return 0


def lockstep_members(store, names: list[str], at: str):
    """The runs of a lockstep comparison at one point: their models at a checkpoint (best, latest, epoch-N) or
    their snapshots nearest a step (step-N); runs on other data or sizes refused before anything loads."""
    from vaetui.pictures.lockstep import Member, check_at, nearest_snapshot, same_data
    from vaetui.runs import checkpoint

    check_at(at)
    if not 2 <= len(names) <= 4 or len(set(names)) != len(names):
        raise VaeError("compare two to four different runs: vaetui compare A B [C D]")
    runs = [store.open(n) for n in names]
    same_data({r.name: r.config() for r in runs})
    members = []
    for run in runs:
        if at.startswith("step-"):
            picture, step = nearest_snapshot(run, run.history(), int(at[5:]))
            members.append(Member(run.name, snapshot=picture, snapshot_step=step))
        else:
            loaded = checkpoint.open_model(run, at)
            for w in loaded.warnings:
                warn(w)
            members.append(Member(run.name, loaded.model, loaded.config))
    return members


def cmd_compare(args: argparse.Namespace) -> int:
    """Two to four runs in lockstep: the same test images and z, the same point of training, one row each."""
    from vaetui.pictures.imaging import save_image
    from vaetui.pictures.lockstep import lockstep
    from vaetui.runs.store import RunStore

    members = lockstep_members(RunStore(args.runs_dir), args.runs, args.at)
    fig = lockstep(members, args.show, args.at, args.seed, args.start)
    out = save_image(fig.image, args.out)
    rows = ("originals, then " if fig.info["originals"] else "") + ", ".join(fig.info["runs"])
    where = (", ".join(f"{n} step {s}" for n, s in fig.info["steps"].items()) if "steps" in fig.info
             else f"checkpoint {args.at}")
    print(f"wrote {out}: {args.show} of {len(members)} runs at {where}; rows: {rows}")
    for name, losses in fig.info.get("losses", {}).items():
        print(f"  {name}: mean reconstruction loss {sum(losses) / len(losses):.1f} on test images "
              f"{fig.info['indices'][0]}-{fig.info['indices'][-1]}")
    return 0


def register(sub) -> None:
    from vaetui.pictures import LOCKSTEP_SHOWS as SHOWS

    png = out_file(".png", ".jpg", ".jpeg", ".webp", ".bmp")

    p = sub.add_parser("compare", help="two to four runs in lockstep: the same images and z at the same point of "
                       "training, one row each (the compare screen's twin)")
    p.add_argument("runs", metavar="RUN", nargs="+", help="2 to 4 runs of the same data and image size")
    p.add_argument("--at", default="best", metavar="WHEN",
                   help="best, latest, epoch-N (a checkpoint every run has) or step-N (each run's training snapshot "
                        "nearest step N) (default: %(default)s)")
    p.add_argument("--show", choices=SHOWS, default="recon",
                   help="recon: originals over each run's reconstructions; error: |x − x̂| per pixel as a heat map; "
                        "samples: the same z decoded by each; interp: one path each (default: %(default)s)")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=0, help="z for samples and interp (default 0)")
    p.add_argument("--start", type=int_in(0), default=0, help="first test image (recon, error)")
    p.add_argument("--out", required=True, type=png, metavar="FILE.png")
    add_runs_dir(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("reconstruct", help="write originals over reconstructions of a run's checkpoint")
    add_run(p)
    add_checkpoint(p)
    p.add_argument("--out", required=True, type=png, metavar="FILE.png")
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--n", type=int_in(1, MAX_RECON), default=8, help="images (default: %(default)s)")
    p.add_argument("--start", type=int_in(0), default=0, help="first image of the split")
    p.add_argument("--compare", metavar="RUN2", help="add RUN2's reconstructions of the same images (same image size)")
    p.add_argument("--cols", type=int_in(1, 64), default=None,
                   help="images a band (originals over reconstructions); default: all in one band")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("sample", help="write faces generated from z ~ N(0, I)")
    add_run(p)
    add_checkpoint(p)
    p.add_argument("--out", required=True, type=png, metavar="FILE.png")
    p.add_argument("--n", type=int_in(1, MAX_PICTURE_IMAGES), default=32, help="faces (default: %(default)s)")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=0)
    p.add_argument("--temperature", type=float_in(0, 100, low_open=True), default=1.0, help="z ~ N(0, T²I)")
    p.add_argument("--cols", type=int_in(1, 64), default=8)
    p.add_argument("--sampler", choices=SAMPLERS, default="prior",
                   help="prior: the model's prior (z ~ N(0, T²I); vamp runs: their VampPrior); gmm: an ex-post Gaussian "
                        "mixture of the training images' codes (Ghosh et al. 2020), fitted once and kept in the run; "
                        "vamp: the VampPrior (Tomczak & Welling 2018): a vamp run's pseudo-inputs, or for another run "
                        "the posteriors of its first 32 training images (default: %(default)s)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="write a latent interpolation strip (.png) or animation (.gif)")
    add_run(p)
    add_checkpoint(p)
    p.add_argument("--out", required=True, type=out_file(".png", ".gif", ".jpg", ".webp"), metavar="FILE.png|.gif")
    p.add_argument("--steps", type=int_in(2, MAX_STEPS), default=11,
                   help="frames from one end to the other (default 11: t = 0, 0.1, ..., 1)")
    p.add_argument("--mode", choices=("lerp", "slerp"), default="lerp")
    p.add_argument("--from", dest="from_", type=int_in(0), metavar="I", help="start at the μ of image I of --split")
    p.add_argument("--to", type=int_in(0), metavar="J", help="end at the μ of image J")
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=0, help="random endpoints z ~ N(0, I) (without --from/--to)")
    p.add_argument("--pairs", type=int_in(1, MAX_PAIRS), default=3, help="random pairs, one row each (the seed: 3)")
    p.add_argument("--extrapolate", type=float_in(0, 5), default=0.0, metavar="X",
                   help="extend the path by X past both ends")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("latent", help="write traversals of the latent dimensions (ranked by KL) and an attribute strip")
    add_run(p)
    add_checkpoint(p)
    p.add_argument("--out", required=True, type=png, metavar="FILE.png")
    p.add_argument("--rank", type=int_in(0), default=0, help="the first dimension shown, by KL rank (0: the most KL)")
    p.add_argument("--dims", type=int_in(1, 64), default=1, help="dimensions traversed, one row each (default 1)")
    p.add_argument("--image", type=int_in(0), default=0, help="traverse from the μ of this validation image")
    p.add_argument("--attribute", type=int_in(0), default=0, metavar="K",
                   help="the K-th attribute's vector below the traversals (mean μ with it minus without)")
    p.add_argument("--amount", type=float_in(0.5, 4), default=1.0, help="attribute vector scale (−2…+2 times it)")
    p.add_argument("--scatter", action="store_true", help="the scatter of μ coloured by the attribute instead")
    p.set_defaults(func=cmd_latent)


__all__ = ["register", "load", "VaeError"]
