"""`vaetui data preview | info | blend`: look at a dataset before training on it."""

from __future__ import annotations

import argparse
import sys

from vaetui.cli.args import MAX_PICTURE_IMAGES, SEED_MAX, SPLITS, float_in, int_in, need, out_file, progress_printer

MAX_BLEND_FRAMES = 101


def add_data_args(p: argparse.ArgumentParser) -> None:
    from vaetui.cli.train import setting_type
    from vaetui.config.settings import DATA_SOURCES, GEOMETRIES, setting

    p.add_argument("--data", choices=DATA_SOURCES, default="synthetic",
                   help="image source (default: synthetic faces, no download needed)")
    p.add_argument("--data-root", metavar="PATH", help="dataset folder for --data celeba|folder")
    p.add_argument("--size", type=setting_type(setting("size")), default=None, metavar="HxW",
                   help="image size, e.g. 64 or 218x178 (default: 64; celeba: 218x178)")
    p.add_argument("--geometry", choices=GEOMETRIES, default="native",
                   help="native: resize the whole image; crop: CelebA-64 protocol (centre 148x148)")


def data_config(args: argparse.Namespace):
    from vaetui.config.settings import DataConfig

    size = args.size
    if size is None:
        size = (218, 178) if args.data == "celeba" and args.geometry == "native" else (64, 64)
    cfg = DataConfig(source=args.data, root=args.data_root, size=size, geometry=args.geometry)
    cfg.validate()
    return cfg


def report_skipped(split) -> None:
    skipped = getattr(split, "skipped", None)
    if skipped:
        print(f"vaetui: skipped {len(skipped)} unreadable images, see {split.cache.log}", file=sys.stderr)


def cmd_preview(args: argparse.Namespace) -> int:
    """The seed's show(): a grid of 32 random training images."""
    from vaetui.data import open_split
    from vaetui.pictures.figures import data_grid
    from vaetui.pictures.imaging import save_image

    cfg = data_config(args)
    split = open_split(cfg, args.split, progress=progress_printer())  # builds a cache with a progress bar
    report_skipped(split)
    fig = data_grid(cfg, args.seed, args.n, args.cols, args.split)
    path = save_image(fig.image, args.out)
    idx = fig.info["indices"]
    print(f"wrote {path}: {len(idx)} {args.split} images, indices {', '.join(map(str, idx[:8]))}{' …' if len(idx) > 8 else ''}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Counts per split, image size, attribute frequencies and cache status (with what it skipped)."""
    import numpy as np

    from vaetui.data import SPLITS as DATA_SPLITS, open_split

    cfg = data_config(args)
    h, w = cfg.size
    if cfg.source != "synthetic":
        from vaetui.data.sources import file_index

        index = file_index(cfg)  # fails with a one-line error before anything is printed
    print(f"source: {cfg.source}" + (f" ({cfg.root})" if cfg.root else "") + f"   size: {h}x{w}   geometry: {cfg.geometry}")
    if cfg.source == "synthetic":
        splits = {s: open_split(cfg, s) for s in DATA_SPLITS}
        for s, split in splits.items():
            print(f"  {s:<6} {len(split):>8,} images (generated on the fly, no cache needed)")
        names = splits["train"].attribute_names
        freq = splits["train"].attributes(np.arange(min(len(splits["train"]), 20000))).float().mean(0).tolist()
    else:
        from vaetui.data import cache
        from vaetui.data.sources import image_folder, split_files

        freq_sum, freq_n = None, 0
        for s in DATA_SPLITS:
            files, attrs, _ = split_files(cfg, index, s)
            status = cache.status(image_folder(cfg, index), files, cfg.size, cfg.geometry, f"{cfg.source}-{s}")
            print(f"  {s:<6} {len(files):>8,} images   cache: {status}")
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


def cmd_blend(args: argparse.Namespace) -> int:
    """The seed's image-space interpolation α·X1 + (1−α)·X2, extrapolated outside [0, 1] if asked."""
    import numpy as np

    from vaetui.data import open_split
    from vaetui.models.latent import alpha_range
    from vaetui.pictures.figures import data_blend
    from vaetui.pictures.imaging import save_image

    need(args.alpha_from <= args.alpha_to, f"--alpha-from {args.alpha_from:g} is above --alpha-to {args.alpha_to:g}: "
         "swap them")
    frames = (args.alpha_to - args.alpha_from) / args.alpha_step + 1
    need(frames <= MAX_BLEND_FRAMES, f"--alpha-step {args.alpha_step:g} gives {frames:.0f} frames, at most "
         f"{MAX_BLEND_FRAMES} fit a strip: use a larger step")
    cfg = data_config(args)
    split = open_split(cfg, "train", progress=progress_printer())
    report_skipped(split)
    if args.index:
        i, j = args.index
    else:
        i, j = (int(v) for v in np.random.default_rng(args.seed).choice(len(split), size=2, replace=False))
    alphas = alpha_range(args.alpha_from, args.alpha_to, args.alpha_step)
    path = save_image(data_blend(cfg, i, j, alphas).image, args.out)
    print(f"wrote {path}: images {i} and {j}, alpha = {', '.join(f'{a:g}' for a in alphas)}")
    return 0


def register(sub) -> None:
    data = sub.add_parser("data", help="look at a dataset: preview grid, image-space blend, info")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=type(data))
    data.set_defaults(func=lambda a: (data.print_help(), 2)[1])
    png = out_file(".png", ".jpg", ".jpeg", ".webp", ".bmp")

    p = dsub.add_parser("preview", help="write a grid of 32 random training images (the seed's show())")
    add_data_args(p)
    p.add_argument("--split", choices=SPLITS, default="train")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=0, help="which random images (default: %(default)s)")
    p.add_argument("--n", type=int_in(1, MAX_PICTURE_IMAGES), default=32, help="number of images (default: %(default)s)")
    p.add_argument("--cols", type=int_in(1, 64), default=8, help="images per row (default: %(default)s)")
    p.add_argument("--out", required=True, type=png, metavar="FILE.png")
    p.set_defaults(func=cmd_preview)

    p = dsub.add_parser("info", help="counts per split, image size, attribute frequencies, cache status")
    add_data_args(p)
    p.set_defaults(func=cmd_info)

    p = dsub.add_parser("blend", help="write the image-space blend a·X1 + (1-a)·X2 of two images")
    add_data_args(p)
    p.add_argument("--index", type=int_in(0), nargs=2, metavar=("I", "J"), help="the two training images")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=0, help="picks I and J when --index is not given")
    p.add_argument("--alpha-from", type=float_in(-10, 10), default=0.0)
    p.add_argument("--alpha-to", type=float_in(-10, 10), default=1.0)
    p.add_argument("--alpha-step", type=float_in(0, 10, low_open=True), default=0.2)
    p.add_argument("--out", required=True, type=png, metavar="FILE.png")
    p.set_defaults(func=cmd_blend)
