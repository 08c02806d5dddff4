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
    import numpy as np

    from vaetui.data import open_split
    from vaetui.imaging import grid, save_image

    split = open_split(_data_config(args), args.split, progress=_progress_printer())
    n = min(args.n, len(split))
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(split), size=n, replace=False))
    path = save_image(grid(split.images(idx), ncol=args.cols), args.out)
    print(f"wrote {path}: {n} {args.split} images, indices {', '.join(map(str, idx[:8]))}{' …' if n > 8 else ''}")
    return 0


def cmd_data_blend(args: argparse.Namespace) -> int:
    """The seed's image-space interpolation α·X1 + (1−α)·X2, extrapolated outside [0, 1] if asked."""
    import numpy as np

    from vaetui.data import open_split
    from vaetui.explore import alpha_range, blend
    from vaetui.imaging import grid, save_image

    split = open_split(_data_config(args), "train", progress=_progress_printer())
    if args.index:
        i, j = args.index
        for k in (i, j):
            if not 0 <= k < len(split):
                raise VaeError(f"--index {k} is out of range: the training split has {len(split)} images")
    else:
        i, j = (int(v) for v in np.random.default_rng(args.seed).choice(len(split), size=2, replace=False))
    alphas = alpha_range(args.alpha_from, args.alpha_to, args.alpha_step)
    x = split.images([i, j])
    strip = blend(x[0], x[1], alphas)
    path = save_image(grid(strip, ncol=len(alphas)), args.out)
    print(f"wrote {path}: images {i} and {j}, alpha = {', '.join(f'{a:g}' for a in alphas)}")
    return 0


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

    p = dsub.add_parser("blend", help="write the image-space blend a·X1 + (1-a)·X2 of two images")
    _add_data_args(p, size_default=None)
    p.add_argument("--index", type=int, nargs=2, metavar=("I", "J"), help="the two training images")
    p.add_argument("--seed", type=int, default=0, help="picks I and J when --index is not given")
    p.add_argument("--alpha-from", type=float, default=0.0)
    p.add_argument("--alpha-to", type=float, default=1.0)
    p.add_argument("--alpha-step", type=float, default=0.2)
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.set_defaults(func=cmd_data_blend)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run vaetui; errors a user can cause print one line and return non-zero."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
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
