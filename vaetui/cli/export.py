"""`vaetui export`: runs and studies as tables to publish (CSV, Markdown, LaTeX, JSON), grouped by seed on ask."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vaetui.cli.args import add_runs_dir
from vaetui.errors import VaeError
from vaetui.runs.tables import rows_of


def _columns(args: argparse.Namespace):
    """--columns checked before any run is read."""
    from vaetui.runs.tables import parse_columns

    return parse_columns(args.columns)  # a ConfigError, said in one line


def _write(args: argparse.Namespace, rows: list) -> int:
    from vaetui.disk.files import atomic_write_bytes
    from vaetui.runs.tables import WRITERS, build

    if not rows:
        raise VaeError("no runs to export: train one first (vaetui train), or name them")
    table = build(rows, _columns(args), args.group_by)
    text = WRITERS[args.format](table)
    if args.out:
        try:
            atomic_write_bytes(args.out, text.encode())
        except OSError as exc:
            raise VaeError(f"cannot write {args.out}: {exc.strerror}: choose another --out") from None
        what = f"{len(table.rows)} {'group' if table.grouped else 'run'}{'s' * (len(table.rows) != 1)}"
        print(f"wrote {args.out}: {what} as {args.format}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_export_runs(args: argparse.Namespace) -> int:
    from vaetui.runs.store import RunStore

    _columns(args)
    store = RunStore(args.runs_dir, include_demo=bool(args.runs))
    return _write(args, rows_of(store, args.runs or store.names()))


def cmd_export_study(args: argparse.Namespace) -> int:
    from vaetui.runs.store import RunStore, validate_name
    from vaetui.studies.results import study_table

    validate_name(args.study, "study")
    _columns(args)
    store = RunStore(args.runs_dir, include_demo=False)
    table = study_table(store.root, args.study)
    names = [r["run"] for r in table["rows"] if r["run"] and (store.root / r["run"] / "config.json").exists()]
    if not names:
        raise VaeError(f"study {args.study} has no trial with a run yet: run it (vaetui sweep) first")
    return _write(args, rows_of(store, names))


def cmd_export_tensorboard(args: argparse.Namespace) -> int:
    """Runs as TensorBoard event files: one folder each under --out."""
    from vaetui.runs.store import RunStore
    from vaetui.runs.tensorboard import export_run, writer_class

    writer_class()  # TensorBoard missing: said before anything is read or made
    store = RunStore(args.runs_dir)
    runs = [store.open(n) for n in args.runs]  # every name checked first
    for run in runs:
        counts = export_run(run, args.out)
        print(f"{run.name}: {counts['scalars']:,} scalars, {counts['images']} images -> {args.out / run.name}")
    print(f"view them: tensorboard --logdir {args.out}")
    return 0


def _table_flags(p: argparse.ArgumentParser) -> None:
    from vaetui.runs.tables import COLUMNS, FORMATS

    p.add_argument("--format", choices=FORMATS, default="md",
                   help="csv (mean, std, n in columns), md, latex (booktabs), json (default: %(default)s)")
    p.add_argument("--group-by", choices=("seed",),
                   help="one row per group of runs that differ only in their seed: mean ± sample std, with n")
    p.add_argument("--columns", metavar="A,B,…",
                   help=f"the columns, in order (default: those the runs have of run, model, latent, beta, seed, "
                        f"epochs, best_valid, neg_elbo, iwae, psnr, ssim, active_units, mig, fd_attr, precision, "
                        f"recall); any of: {', '.join(COLUMNS)}")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here (default: standard output)")
    add_runs_dir(p)


def register(sub) -> None:
    p = sub.add_parser("export", help="tables to publish: runs or a study as csv, md, latex or json (--group-by seed)",
                       description="Export runs or a study's trials as a table; each number's protocol (split, N, "
                                   "k, checkpoint) in a footnote.")
    what = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    r = what.add_parser("runs", help="these runs (default: every run in the folder)")
    r.add_argument("runs", metavar="RUN", nargs="*")
    _table_flags(r)
    r.set_defaults(func=cmd_export_runs)
    s = what.add_parser("study", help="a study's trials")
    s.add_argument("study", metavar="NAME")
    _table_flags(s)
    s.set_defaults(func=cmd_export_study)
    t = what.add_parser("tensorboard", help="runs as TensorBoard event files (scalars and snapshots), one folder "
                                            "each: needs the extra vaetui[tensorboard]")
    t.add_argument("runs", metavar="RUN", nargs="+")
    t.add_argument("--out", type=Path, required=True, metavar="DIR", help="a folder for tensorboard --logdir")
    add_runs_dir(t)
    t.set_defaults(func=cmd_export_tensorboard)
