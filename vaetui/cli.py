"""The one entry point: `vaetui` opens the TUI; its sub-commands are the screens' headless twins."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from vaetui import __version__
from vaetui.errors import VaeError

def _add_data_args(p: argparse.ArgumentParser, size_default: str | None = "64") -> None:
    p.add_argument("--data", choices=("synthetic", "celeba", "folder"), default="synthetic",
                   help="image source (default: synthetic faces, no download needed)")
    p.add_argument("--data-root", metavar="PATH", help="dataset folder for --data celeba|folder")
    p.add_argument("--size", default=size_default, metavar="HxW",
                   help="image size, e.g. 64 or 218x178 (default: %(default)s; celeba: 218x178)")
    p.add_argument("--geometry", choices=("native", "crop"), default="native",
                   help="native: resize the whole image; crop: CelebA-64 protocol (centre 148x148)")


def _data_config(args: argparse.Namespace):
    from vaetui.config import DataConfig, parse_size

    size = args.size
    if size is None:
        size = "218x178" if args.data == "celeba" and args.geometry == "native" else "64"
    cfg = DataConfig(source=args.data, root=args.data_root, size=parse_size(size), geometry=args.geometry,
                     seed=getattr(args, "data_seed", 0) or 0)
    cfg.validate()
    return cfg


def cmd_model(args: argparse.Namespace) -> int:
    """Print the layer table with output shapes and the parameter count."""
    from dataclasses import replace

    from vaetui.config import parse_size, preset
    from vaetui.model import ConvVAE, decoder_paddings, layer_table, parameter_count

    cfg = preset(args.preset)
    if args.latent is not None or args.size is not None or args.hidden is not None:
        model_cfg = replace(cfg.model, **{k: v for k, v in (("latent", args.latent), ("hidden", args.hidden)) if v is not None})
        data_cfg = replace(cfg.data, size=parse_size(args.size)) if args.size else cfg.data
        cfg = replace(cfg, model=model_cfg, data=data_cfg)
    cfg.model.validate()  # the data root is not needed to describe the network
    model = ConvVAE.from_config(cfg)
    h, w = cfg.data.size
    print(f"ConvVAE  preset={cfg.preset}  image=3x{h}x{w}  hidden={cfg.model.hidden}  latent={cfg.model.latent}")
    rows = layer_table(model)
    width = max(len(r[1]) for r in rows)
    print(f"{'layer':<14} {'type':<{width}}  {'output':<16} {'params':>12}")
    for name, kind, shape, n in rows:
        print(f"{name:<14} {kind:<{width}}  {'x'.join(map(str, shape)):<16} {n:>12,}")
    pads, out_pad = decoder_paddings(h, w)
    print(f"decoder paddings: {', '.join(str(p) for p in pads)}" + (f"  output padding: {out_pad}" if any(out_pad) else ""))
    print(f"parameters: {parameter_count(model):,}")
    return 0


def cmd_data_preview(args: argparse.Namespace) -> int:
    """The seed's show(): a grid of 32 random training images."""
    from vaetui.data import open_split
    from vaetui.figures import data_grid
    from vaetui.imaging import save_image

    cfg = _data_config(args)
    _report_skipped(open_split(cfg, args.split, progress=_progress_printer()))  # builds a cache with a progress bar
    fig = data_grid(cfg, args.seed, args.n, args.cols, args.split)
    path = save_image(fig.image, args.out)
    idx = fig.info["indices"]
    print(f"wrote {path}: {len(idx)} {args.split} images, indices {', '.join(map(str, idx[:8]))}{' …' if len(idx) > 8 else ''}")
    return 0


def _report_skipped(split) -> None:
    skipped = getattr(split, "skipped", None)
    if skipped:
        print(f"vaetui: skipped {len(skipped)} unreadable images, see {split.cache.log}", file=sys.stderr)


def cmd_data_info(args: argparse.Namespace) -> int:
    """Counts per split, image size, attribute frequencies and cache status."""
    import numpy as np

    from vaetui.data import SPLITS, open_split

    cfg = _data_config(args)
    h, w = cfg.size
    if cfg.source != "synthetic":
        from vaetui.data.sources import file_index

        index = file_index(cfg)  # fails with a one-line error before anything is printed
    print(f"source: {cfg.source}" + (f" ({cfg.root})" if cfg.root else "") + f"   size: {h}x{w}   geometry: {cfg.geometry}")
    if cfg.source == "synthetic":
        splits = {s: open_split(cfg, s) for s in SPLITS}
        for s, split in splits.items():
            print(f"  {s:<6} {len(split):>8,} images (generated on the fly, no cache needed)")
        names = splits["train"].attribute_names
        freq = splits["train"].attributes(np.arange(min(len(splits["train"]), 20000))).float().mean(0).tolist()
    else:
        from vaetui.data import cache
        from vaetui.data.sources import split_files

        img_folder = index.folder / "img_align_celeba" if cfg.source == "celeba" else index.folder
        freq_sum, freq_n = None, 0
        for s in SPLITS:
            files, attrs, _ = split_files(cfg, index, s)
            print(f"  {s:<6} {len(files):>8,} images   cache: {cache.status(img_folder, files, cfg.size, cfg.geometry, f'{cfg.source}-{s}')}")
            if s == "train" and len(attrs):
                freq_sum, freq_n = attrs.sum(0), len(attrs)
        names = index.attribute_names
        freq = (freq_sum / max(freq_n, 1)).tolist() if freq_sum is not None else []
    if names:
        print("attributes (share of training images):")
        cells = [f"{n} {f * 100:.0f}%" for n, f in zip(names, freq)]
        width = max(len(c) for c in cells) + 2
        per_row = max(1, 100 // width)
        for i in range(0, len(cells), per_row):
            print("  " + "".join(c.ljust(width) for c in cells[i : i + per_row]).rstrip())
    else:
        print("attributes: none (add attributes.csv to the folder: filename,<name>,... with 0/1 values)")
    return 0


def cmd_data_blend(args: argparse.Namespace) -> int:
    """The seed's image-space interpolation α·X1 + (1−α)·X2, extrapolated outside [0, 1] if asked."""
    import numpy as np

    from vaetui.data import open_split
    from vaetui.explore import alpha_range
    from vaetui.figures import data_blend
    from vaetui.imaging import save_image

    cfg = _data_config(args)
    split = open_split(cfg, "train", progress=_progress_printer())
    _report_skipped(split)
    if args.index:
        i, j = args.index
    else:
        i, j = (int(v) for v in np.random.default_rng(args.seed).choice(len(split), size=2, replace=False))
    alphas = alpha_range(args.alpha_from, args.alpha_to, args.alpha_step)
    path = save_image(data_blend(cfg, i, j, alphas).image, args.out)
    print(f"wrote {path}: images {i} and {j}, alpha = {', '.join(f'{a:g}' for a in alphas)}")
    return 0


TRAIN_SECTION_ONLY = ("epochs", "max_steps", "threads", "device", "precision", "compile", "image_every",
                      "log_every", "checkpoint_every", "keep_last")


def _train_overrides(args: argparse.Namespace) -> dict:
    """Flags given on the command line, as flat config overrides (None = not given)."""
    return {
        "data": args.data, "data_root": args.data_root, "size": args.size, "geometry": args.geometry,
        "dataset_size": args.dataset_size, "latent": args.latent, "hidden": args.hidden,
        "likelihood": args.likelihood, "beta": args.beta, "kl_warmup": args.kl_warmup, "lr": args.lr,
        "batch_size": args.batch_size, "epochs": args.epochs, "max_steps": args.max_steps, "seed": args.seed,
        "device": args.device, "precision": args.precision, "threads": args.threads,
        "compile": True if args.compile else None, "keep_last": args.keep_last,
        "image_every": args.image_every, "checkpoint_every": args.checkpoint_every,
    }


def build_train_config(args: argparse.Namespace):
    """Preset, then the config file, then flags (each overriding the one before)."""
    from vaetui.config import load_config_file, preset, with_overrides

    file_overrides = load_config_file(args.config) if args.config else {}
    name = args.preset or file_overrides.pop("preset", None) or "faces64"
    file_overrides.pop("preset", None)
    cfg = with_overrides(preset(name), file_overrides)
    cfg = with_overrides(cfg, _train_overrides(args))
    return cfg.validate()


def cmd_train(args: argparse.Namespace) -> int:
    """Train a new run, or resume one, headless."""
    import signal

    from vaetui.perf import tune_allocator

    tune_allocator()
    from vaetui.config import with_overrides
    from vaetui.errors import ConfigError
    from vaetui.console import print_json_events, print_progress
    from vaetui.engine import Control, Trainer
    from vaetui.events import FailedEvent, FinishedEvent
    from vaetui.runs import RunStore

    from vaetui import distributed

    world = distributed.init(args.device or "auto")
    store = RunStore(args.runs_dir)
    if args.resume:
        run = store.open(args.resume)
        if run.read_only:
            raise ConfigError("resume", f"run {run.name} is read-only: start a new run with vaetui train")
        current = run.config()
        if args.preset and args.preset != current.preset or args.config:
            raise ConfigError("resume", "--preset/--config cannot change an existing run: drop them or start a new run")
        given = {k: v for k, v in _train_overrides(args).items() if v is not None}
        cfg = with_overrides(current, given).validate()
        changed = sorted(k for k in given if k not in TRAIN_SECTION_ONLY
                         and with_overrides(current, {k: given[k]}) != current)
        if changed:
            raise ConfigError("resume", "a resumed run keeps its model, data and optimiser settings; drop "
                              f"{', '.join('--' + k.replace('_', '-') for k in changed)} or start a new run")
        distributed.broadcast(None, world)  # every rank has read the config before rank 0 rewrites it
        if world.main:
            run.write_config(cfg)
    else:
        cfg = build_train_config(args)
        created = None
        if world.main:
            try:
                created = store.create(cfg, args.name).name
            except VaeError as exc:
                created = exc
        created = distributed.broadcast(created, world)  # one run, named by rank 0
        if isinstance(created, VaeError):
            raise created
        run = store.open(created)
    control = Control()

    def on_signal(signum, _frame):
        control.stop()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        events = Trainer(cfg, run, resume=bool(args.resume)).run(control)
        if not world.main:
            last = None
            for last in events:  # rank 0 reports for everyone
                pass
        elif args.log_format == "json":
            last = print_json_events(events)
        else:
            last = print_progress(events, cfg.train.epochs)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        distributed.shutdown(world)
    if isinstance(last, FailedEvent):
        print(f"vaetui: error: {last.error}", file=sys.stderr)
        return 1
    if isinstance(last, FinishedEvent) and last.reason == "stopped":
        return 130 if args.log_format != "json" else 0
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs with their status and best validation loss."""
    import json
    import time

    from vaetui.runs import RunStore

    infos = RunStore(args.runs_dir).infos()
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return 0
    if not infos:
        print(f"no runs in {args.runs_dir or 'checkpoints'}: start one with `vaetui train`")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("run", "preset", "data", "size", "latent", "β", "epochs", "best valid", "status", "updated"):
        table.add_column(col, justify="right" if col in ("latent", "β", "epochs", "best valid") else "left")
    for i in infos:
        table.add_row(i.name + (" (read-only)" if i.read_only else ""), i.preset, i.data, i.size, str(i.latent),
                      f"{i.beta:g}", f"{i.epochs_done}/{i.epochs}",
                      "-" if i.best_valid is None else f"{i.best_valid:.2f}", i.status,
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(i.updated)))
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # a pipe: no wrapping
    console.print(table)
    return 0


def run_tui(runs_dir=None, threads=None, device="auto", image="halfcell", monitor=None) -> int:
    """Open the terminal app (needs a terminal)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise VaeError("the vaetui TUI needs a terminal; for scripts use the sub-commands (vaetui --help)")
    from vaetui.perf import quiet_openmp, tune_allocator

    quiet_openmp()  # before torch is imported: idle OpenMP threads must not spin beside the UI
    tune_allocator()
    if threads is not None and threads < 1:
        raise VaeError("--threads must be at least 1")
    from vaetui.runs import RunStore

    if monitor is not None:
        RunStore(runs_dir).open(monitor)  # a missing run is a one-line error, before the screen opens
    from vaetui.ui.app import make_app
    from vaetui.ui.widgets.picture import picture_class

    if image not in ("halfcell", "none"):
        picture_class(image)  # textual-image probes the terminal when imported: before the app starts
    return make_app(runs_dir=runs_dir, threads=threads, device=device, image=image, monitor=monitor).run() or 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """The monitor screen for a run trained elsewhere (tails its metrics.jsonl)."""
    return run_tui(runs_dir=args.runs_dir, image=args.image, monitor=args.run)


def _explore_model(args):
    from vaetui.figures import model_for
    from vaetui.runs import RunStore

    run = RunStore(args.runs_dir).open(args.run)
    model, config, path, warnings = model_for(run, args.checkpoint)
    for w in warnings:
        print(f"vaetui: warning: {w}", file=sys.stderr)
    return run, model, config, path


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Originals over reconstructions of a split, with each image's loss."""
    from vaetui.figures import reconstructions
    from vaetui.imaging import save_image

    run, model, config, path = _explore_model(args)
    compare = None
    if args.compare:
        from vaetui.figures import model_for
        from vaetui.runs import RunStore

        other_model, other_cfg, _, _ = model_for(RunStore(args.runs_dir).open(args.compare), args.checkpoint)
        compare = (other_model, other_cfg)
    fig = reconstructions(model, config, args.split, args.n, args.start, compare)
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
    from vaetui.figures import samples
    from vaetui.imaging import save_image

    run, model, config, path = _explore_model(args)
    out = save_image(samples(model, args.n, args.seed, args.temperature, args.cols).image, args.out)
    print(f"wrote {out}: {args.n} samples from {run.name} ({path.name}), seed {args.seed}, temperature {args.temperature:g}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Frames along a latent path: a PNG strip (one row a pair) or an animated GIF."""
    from vaetui.figures import interpolation
    from vaetui.imaging import save_any

    if (args.from_ is None) != (args.to is None):
        raise VaeError("--from and --to go together (two dataset images); or use --seed for random endpoints")
    run, model, config, path = _explore_model(args)
    endpoints = (args.from_, args.to) if args.from_ is not None else None
    fig = interpolation(model, config, args.steps, args.mode, args.seed, args.pairs, endpoints, args.extrapolate,
                        args.split)
    gif = str(args.out).lower().endswith(".gif")
    out = save_any(fig.frames if gif else fig.image, args.out)
    norms = ", ".join(f"{v:.2f}" for v in fig.info["norms"][0])
    print(f"wrote {out}: {run.name} ({path.name}), {args.mode}, t = {fig.info['t'][0]:g}..{fig.info['t'][-1]:g}, "
          f"|z| along the path: {norms}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Metrics of a checkpoint on a split, stored in the run with their protocol."""
    import json

    from vaetui.data import open_split
    from vaetui.metrics import evaluate

    run, model, config, path = _explore_model(args)
    split = open_split(config.data, args.split, progress=_progress_printer())
    result = evaluate(model, config, split, args.n, args.k, args.seed, progress=_progress_printer())
    protocol = {"run": run.name, "checkpoint": path.name, "split": args.split, "count": min(args.n, len(split)),
                "k": args.k, "seed": args.seed}
    result = {"protocol": protocol, **result}
    stored = None
    if not run.read_only:
        from vaetui.runs import atomic_write_bytes

        name = f"{path.stem.removeprefix('ckpt-')}-{args.split}-n{protocol['count']}-k{args.k}-s{args.seed}.json"
        stored = run.path / "eval" / name
        atomic_write_bytes(stored, json.dumps(result, indent=2).encode())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    pi, pd = result["per_image"], result["per_dim"]
    print(f"{run.name} ({path.name}) on {protocol['count']} {args.split} images, k={args.k}, seed {args.seed}")
    print(f"  -ELBO     {pi['neg_elbo']:12.2f} nats/image  = {pd['neg_elbo_nats']:.4f} nats/dim = {pd['neg_elbo_bits']:.4f} bits/dim")
    print(f"    recon   {pi['recon']:12.2f}    KL {pi['kl']:.2f}")
    print(f"  IWAE NLL  {pi['iwae_nll']:12.2f} nats/image  = {pd['iwae_nats']:.4f} nats/dim = {pd['iwae_bits']:.4f} bits/dim")
    print(f"  PSNR {result['psnr']:.2f} dB   SSIM {result['ssim']:.4f}   active units {result['active_units']}/{result['latent']}")
    ranked = sorted(enumerate(result["kl_per_dim"]), key=lambda t: -t[1])[:8]
    print("  KL per dim (top): " + ", ".join(f"z{j} {v:.2f}" for j, v in ranked))
    if "probe_r2" in result:
        print("  linear probe R² μ -> factor: " + ", ".join(f"{n} {v:.2f}" for n, v in result["probe_r2"].items()))
    if stored:
        print(f"  stored in {stored}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """The seed's learning curves (train and validation loss against iterations), several runs in one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vaetui.imaging import atomic_target
    from vaetui.runs import RunStore

    store = RunStore(args.runs_dir)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for name in args.runs:
        run = store.open(name)
        events, _ = run.read_events()
        epochs = [e for e in events if e.get("type") == "epoch"]
        steps = [e for e in events if e.get("type") == "step"]
        if not epochs and not steps:
            raise VaeError(f"run {name} has no metrics yet: train it first")
        line = None
        if steps and args.steps:
            (line,) = ax.plot([e["step"] for e in steps], [e["loss"] for e in steps], alpha=0.35, lw=1,
                              label=f"{name} train (per step)")
        if epochs:
            color = line.get_color() if line else None
            (line,) = ax.plot([e["step"] for e in epochs], [e["train_loss"] for e in epochs], "-o", ms=3, color=color,
                              label=f"{name} train")
            ax.plot([e["step"] for e in epochs], [e["valid_loss"] for e in epochs], "--s", ms=3,
                    color=line.get_color(), label=f"{name} validation")
    ax.set_xlabel("Iterations")
    ax.set_ylabel("Loss per image (nats)")
    ax.set_title("Learning curves")
    if args.log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    tmp = atomic_target(out)
    try:
        fig.savefig(tmp, format=out.suffix.lstrip(".").lower() or "png")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    print(f"wrote {out}: learning curves of {', '.join(args.runs)}")
    return 0


def _add_explore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run name (see vaetui runs), e.g. demo")
    p.add_argument("--checkpoint", default="best", help="best (default), latest, epoch-N or a path")
    p.add_argument("--runs-dir", default=None, metavar="DIR")
    p.add_argument("--out", required=True, metavar="FILE")


def _progress_printer():
    """A callback (done, total, what) that draws a rich progress bar on stderr; None without a tty."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    state: dict = {}

    def update(done: int, total: int, what: str) -> None:
        if "bar" not in state:
            state["bar"] = Progress(transient=True)
            state["bar"].start()
            state["task"] = state["bar"].add_task(what, total=total)
        state["bar"].update(state["task"], completed=done, total=total)
        if done >= total:
            state.pop("bar").stop()

    return update


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for `vaetui` and its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="vaetui",
        description="Train and explore variational autoencoders from a terminal. "
        "With no command, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"vaetui {__version__}")
    parser.add_argument("--runs-dir", dest="tui_runs_dir", metavar="DIR", help="run store for the TUI (default: ./checkpoints)")
    parser.add_argument("--threads", dest="tui_threads", type=int, metavar="N", help="torch threads for training in the TUI")
    parser.add_argument("--device", dest="tui_device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--image", dest="tui_image", default="halfcell",
                        choices=("auto", "halfcell", "sixel", "kitty", "unicode", "none"),
                        help="how to draw images (default: halfcell, works over SSH and in tmux)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("model", help="print the network's layers, output shapes and parameter count")
    p.add_argument("--preset", default="seed", help="preset to describe (default: %(default)s)")
    p.add_argument("--latent", type=int, help="latent size")
    p.add_argument("--hidden", type=int, help="hidden channels c (encoder c, 2c, 4c, 8c)")
    p.add_argument("--size", metavar="HxW", help="image size, e.g. 64 or 218x178")
    p.set_defaults(func=cmd_model)

    data = sub.add_parser("data", help="look at a dataset: preview grid, image-space blend, info")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data.set_defaults(func=lambda a: (data.print_help(), 2)[1])

    p = dsub.add_parser("preview", help="write a grid of 32 random training images (the seed's show())")
    _add_data_args(p, size_default=None)
    p.add_argument("--split", choices=("train", "valid", "test"), default="train")
    p.add_argument("--seed", type=int, default=0, help="which random images (default: %(default)s)")
    p.add_argument("--n", type=int, default=32, help="number of images (default: %(default)s)")
    p.add_argument("--cols", type=int, default=8, help="images per row (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.set_defaults(func=cmd_data_preview)

    p = dsub.add_parser("info", help="counts per split, image size, attribute frequencies, cache status")
    _add_data_args(p, size_default=None)
    p.set_defaults(func=cmd_data_info)

    p = dsub.add_parser("blend", help="write the image-space blend a·X1 + (1-a)·X2 of two images")
    _add_data_args(p, size_default=None)
    p.add_argument("--index", type=int, nargs=2, metavar=("I", "J"), help="the two training images")
    p.add_argument("--seed", type=int, default=0, help="picks I and J when --index is not given")
    p.add_argument("--alpha-from", type=float, default=0.0)
    p.add_argument("--alpha-to", type=float, default=1.0)
    p.add_argument("--alpha-step", type=float, default=0.2)
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.set_defaults(func=cmd_data_blend)

    p = sub.add_parser("train", help="train a run headless (progress bar, one line per epoch)")
    p.add_argument("--preset", help="faces64 (default), seed, seed-l3, tiny")
    p.add_argument("--config", metavar="FILE", help="TOML or JSON file of settings; flags override it")
    p.add_argument("--data", choices=("synthetic", "celeba", "folder"))
    p.add_argument("--data-root", metavar="PATH")
    p.add_argument("--size", metavar="HxW")
    p.add_argument("--geometry", choices=("native", "crop"))
    p.add_argument("--latent", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--likelihood", choices=("bernoulli", "gaussian"))
    p.add_argument("--beta", type=float)
    p.add_argument("--kl-warmup", type=int, metavar="STEPS")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--dataset-size", type=int, help="training images per epoch (the seed: 30000)")
    p.add_argument("--seed", type=int)
    p.add_argument("--name", help="run name (default: <preset>-<date>-<time>)")
    p.add_argument("--runs-dir", default=None, metavar="DIR", help="run store (default: ./checkpoints)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--threads", type=int)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--image-every", type=int, metavar="STEPS")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS")
    p.add_argument("--keep-last", type=int, metavar="K", help="epoch checkpoints to keep")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last good checkpoint")
    p.add_argument("--log-format", choices=("rich", "json"), default="rich")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("monitor", help="watch a run that another process trains (the TUI's monitor)")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--runs-dir", default=None, metavar="DIR")
    p.add_argument("--image", default="halfcell", choices=("auto", "halfcell", "sixel", "kitty", "unicode", "none"))
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("reconstruct", help="write originals over reconstructions of a run's checkpoint")
    _add_explore_args(p)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--start", type=int, default=0, help="first image of the split")
    p.add_argument("--compare", metavar="RUN2", help="add RUN2's reconstructions of the same images (same image size)")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("sample", help="write faces generated from z ~ N(0, I)")
    _add_explore_args(p)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--cols", type=int, default=8)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="write a latent interpolation strip (.png) or animation (.gif)")
    _add_explore_args(p)
    p.add_argument("--steps", type=int, default=11, help="frames from one end to the other (default 11: t = 0, 0.1, ..., 1)")
    p.add_argument("--mode", choices=("lerp", "slerp"), default="lerp")
    p.add_argument("--from", dest="from_", type=int, metavar="I", help="start at the μ of image I of --split")
    p.add_argument("--to", type=int, metavar="J", help="end at the μ of image J")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--seed", type=int, default=0, help="random endpoints z ~ N(0, I) (without --from/--to)")
    p.add_argument("--pairs", type=int, default=3, help="random pairs, one row each (the seed: 3)")
    p.add_argument("--extrapolate", type=float, default=0.0, metavar="X", help="extend the path by X past both ends")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("eval", help="metrics of a checkpoint: -ELBO, IWAE bound, bits/dim, PSNR, SSIM, active units")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--checkpoint", default="best")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--n", type=int, default=1024, help="images (the first N of the split)")
    p.add_argument("--k", type=int, default=64, help="importance samples for the IWAE bound")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs-dir", default=None, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("plot", help="write learning curves (train and validation loss) of one or more runs")
    p.add_argument("runs", metavar="RUN", nargs="+")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--steps", action="store_true", help="also draw the per-step training loss")
    p.add_argument("--log-y", action="store_true")
    p.add_argument("--runs-dir", default=None, metavar="DIR")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("runs", help="list runs: status, settings, best validation loss")
    p.add_argument("--runs-dir", default=None, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run vaetui; errors a user can cause print one line and return non-zero."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            return run_tui(runs_dir=args.tui_runs_dir, threads=args.tui_threads, device=args.tui_device,
                           image=args.tui_image)
        return args.func(args)
    except VaeError as exc:
        print(f"vaetui: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaetui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
