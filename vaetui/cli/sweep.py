"""`vaetui sweep SPACE` (a study on Optuna, K workers as processes) and `vaetui sweep show STUDY` (its twin)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from vaetui.cli.args import add_runs_dir, int_in
from vaetui.cli.train import add_setting_flags, given_settings
from vaetui.errors import ConfigError

# settings that say how a trial runs here, not what it is: a resumed or joined study may change them
HOW = ("threads", "device", "precision", "compile", "image_every", "log_every", "checkpoint_every", "keep_last")


def _spec_from_args(args: argparse.Namespace, root: Path):
    """The study to work on: made from SPACE and the flags, or the existing one of that name (joined: the
    same command on another host joins it; different settings are refused)."""
    from vaetui.disk.locks import file_lock
    from vaetui.runs.store import validate_name
    from vaetui.studies.spec import study_dir

    given = {k: v for k, v in given_settings(args).items() if v is not None and k not in HOW}
    if args.preset:
        given["preset"] = args.preset
    name = args.study or (args.space if args.space in ("latent", "beta") else Path(args.space).stem)
    validate_name(name, "study")
    folder = study_dir(root, name)
    if (folder / "config.json").exists():
        raise ConfigError("study", f"{name!r} is a run (runs and studies share one namespace): choose another "
                          "--study")
    new = None
    if not (folder / "study.json").exists():
        if args.resume or args.join:
            raise ConfigError("study", f"no study {name!r} in {root} to resume: start it without --resume")
        if folder.exists() and (not folder.is_dir() or any(p.name != "claim.lock" for p in folder.iterdir())):
            raise ConfigError("study", f"{folder} exists and is not a study: choose another --study")
        new = _new_spec(args, name, given)  # every input checked before anything is made
    made = not folder.exists()
    try:
        with file_lock(folder / "claim.lock"):  # two processes starting together make one study
            if (folder / "study.json").exists():
                return _existing(args, root, name, given)
            return _create(root, new)
    except BaseException:
        if made and not (folder / "study.json").exists():  # nothing half-made is left behind
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        raise


def _existing(args, root: Path, name: str, given: dict):
    import json
    from dataclasses import replace

    from vaetui.studies.spec import load_space, read_spec, write_spec

    spec = read_spec(root, name)
    if not args.join:
        space = load_space(args.space)
        space = _own_models(replace(space, settings={**space.settings, **given}))
        mine = json.dumps({k: v for k, v in space.to_json().items() if k != "source"}, sort_keys=True, default=str)
        theirs = json.dumps({k: v for k, v in spec.space.to_json().items() if k != "source"}, sort_keys=True,
                            default=str)
        if mine != theirs:
            raise ConfigError("study", f"study {name!r} exists with other settings: run the same command to join "
                              "it, --resume to continue it, or choose another --study")
    if args.trials is not None and args.trials != spec.trials:
        spec = replace(spec, trials=args.trials)
        write_spec(root, spec)
    return spec


def _own_models(space):
    """A user's models a space names (model = ["vae", "mine.py:Net"]): paths made absolute (a trial finds its file
    from any folder), files recorded as this user's (vaetui.disk.trust), classes checked now, not in a worker."""
    from dataclasses import replace

    from vaetui.config.settings import MODELS
    from vaetui.models.user import absolute, load_class

    def own(value):
        if not isinstance(value, str) or value in MODELS:
            return value
        load_class(absolute(value), trust=True)
        return absolute(value)

    params = tuple(replace(p, values=tuple(own(v) for v in p.values)) if p.name == "model" else p
                   for p in space.params)
    settings = {**space.settings, **({"model": own(space.settings["model"])} if "model" in space.settings else {})}
    return replace(space, params=params, settings=settings)


def _new_spec(args, name: str, given: dict):
    """A new study's spec from SPACE and the flags, checked (the space, the trials' settings): no file is made."""
    from dataclasses import replace

    from vaetui.studies.spec import EVALUATED, StudySpec, load_space
    from vaetui.studies.worker import trial_config

    space = load_space(args.space)
    space = _own_models(replace(space, settings={**space.settings, **given}))
    sampler = args.sampler or ("grid" if space.size() else "tpe")
    if sampler == "grid":
        space.grid()  # a range in a grid: said now, not in a worker
    trials = args.trials or (space.size() if sampler == "grid" else 8)
    # valid-loss weighs KL by each trial's own β: across β only the ELBO (β = 1) compares
    evaluate = args.evaluate or args.space in EVALUATED
    metric = args.metric or ("elbo" if evaluate or any(p.name == "beta" for p in space.params) else "valid-loss")
    # a grid is a comparison: every trial runs to the end (early epochs favour small models); a search prunes
    prune = args.pruner or ("none" if sampler == "grid" else "median")
    spec = StudySpec(name, space, metric, sampler, prune, trials, args.storage or "", args.sweep_seed, evaluate)
    trial_config(spec, {p.name: (p.values[0] if p.values else p.low) for p in space.params}, {})  # settings valid
    return spec


def _create(root: Path, spec):
    """Make the study in its storage first (a bad or unreachable storage fails here), then its study.json."""
    from vaetui.studies.spec import new_study, write_spec

    new_study(root, spec)
    write_spec(root, spec)
    return spec


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.space == "show":
        return cmd_show(args)
    if args.json or args.out:
        raise ConfigError("sweep", "--json and --out belong to `vaetui sweep show STUDY`")
    if args.notify_cmd:  # this process's trials and its workers' (processes of this one) alert with it
        os.environ["VAETUI_NOTIFY_CMD"] = args.notify_cmd
    from vaetui.runs.store import RunStore

    root = RunStore(args.runs_dir, include_demo=False).root
    if args.storage:  # this process and its workers connect with it; study.json keeps it without a password
        from vaetui.studies.spec import STORAGE_ENV, without_password

        os.environ[STORAGE_ENV] = args.storage
        args.storage = without_password(args.storage)
    spec = _spec_from_args(args, root)
    workers = args.workers
    threads = args.threads or max(1, (os.cpu_count() or 1) // (workers * (args.torchrun or 1)))
    if workers > 1:
        return _spawn(args, spec, root, workers, threads)
    return _work(args, spec, root, threads)


def _work(args, spec, root: Path, threads: int) -> int:
    from vaetui.train.control import Control
    from vaetui.runtime import tune_allocator
    from vaetui.studies.worker import best_line, load_study, work

    tune_allocator()
    control = Control()
    old = {sig: signal.signal(sig, lambda *_: control.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    tag = f"[{args.worker_tag}] " if args.worker_tag else ""
    overrides = {"threads": threads, "device": args.device, "precision": args.precision}
    try:
        outcomes = work(root, spec, overrides, args.resume, control, say=lambda line: print(tag + line, flush=True),
                        nproc=args.torchrun or 1)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if not args.worker_tag:
        print(best_line(load_study(root, spec), spec.metric))
    if control.stop_requested.is_set():
        print(f"{tag}stopped: continue with vaetui sweep {args.space} --study {spec.name} --resume", file=sys.stderr)
        return 130
    return 1 if any(o.state == "failed" for o in outcomes) else 0


def _spawn(args, spec, root: Path, workers: int, threads: int) -> int:
    """K worker processes on one study; Ctrl-C reaches them all (one process group) and each checkpoints."""
    from vaetui.studies.worker import best_line, load_study

    argv = [sys.executable, "-m", "vaetui", "sweep", args.space, "--study", spec.name, "--join", "--workers", "1",
            "--threads", str(threads), "--runs-dir", str(root)]
    if args.resume:
        argv.append("--resume")
    for flag in ("device", "precision", "torchrun"):
        if getattr(args, flag):
            argv += [f"--{flag}", str(getattr(args, flag))]
    print(f"study {spec.name}: {spec.trials} trials of {spec.space.source}, {workers} workers × {threads} threads, "
          f"sampler {spec.sampler}, pruner {spec.pruner}, {spec.metric}")
    procs = [subprocess.Popen(argv + ["--worker-tag", f"w{k + 1}"]) for k in range(workers)]
    stopped = False
    while True:
        try:
            codes = [p.wait() for p in procs]
            break
        except KeyboardInterrupt:  # the workers got it too: wait for their checkpoints
            stopped = True
    print(best_line(load_study(root, spec), spec.metric))
    if stopped or 130 in codes:
        print(f"stopped: continue with vaetui sweep {args.space} --study {spec.name} --resume", file=sys.stderr)
        return 130
    return max(codes)


def cmd_show(args: argparse.Namespace) -> int:
    from vaetui.runs.store import RunStore
    from vaetui.studies.results import show

    if not args.study_arg:
        raise ConfigError("sweep show", "name the study: vaetui sweep show STUDY")
    from vaetui.runs.store import validate_name

    validate_name(args.study_arg, "study")
    root = RunStore(args.runs_dir, include_demo=False).root
    return show(root, args.study_arg, as_json=args.json, out=args.out)


def register(sub) -> None:
    from vaetui.config.presets import PRESETS
    from vaetui.studies.spec import METRICS, PRUNERS, SAMPLERS

    p = sub.add_parser("sweep", help="run a study (latent, beta, families or a TOML [sweep] file) on Optuna; "
                       "`sweep show STUDY` prints one",
                       description="Run a study: each trial an ordinary run <study>-tNNN. SPACE is latent, beta, "
                       "families, or a TOML file with a [sweep] section; training flags are the settings all trials "
                       "share.")
    p.add_argument("space", metavar="SPACE", help="latent, beta, families (every VAE family, 4 minutes each), a TOML "
                   "file with [sweep], or `show`")
    p.add_argument("study_arg", nargs="?", metavar="STUDY", help="(with show) the study to show")
    p.add_argument("--study", help="study name (default: the space's name)")
    p.add_argument("--trials", type=int_in(1, 100000), help="trials in all (default: the grid, else 8)")
    p.add_argument("--workers", type=int_in(1, 256), default=1, help="trials at once, as processes (default: 1)")
    p.add_argument("--notify-cmd", metavar="CMD",
                   help="run CMD (a shell line) when a trial finishes, fails, rolls back or collapses, the alert as "
                        "JSON on its standard input (default: $VAETUI_NOTIFY_CMD)")
    p.add_argument("--sampler", choices=SAMPLERS, help="default: grid for lists of values, else tpe")
    p.add_argument("--pruner", choices=PRUNERS, help="default: none for a grid (a comparison runs every trial to "
                   "the end), else median")
    p.add_argument("--metric", choices=list(METRICS), help="what a trial is judged by (default: elbo when β varies, "
                   "since valid-loss weighs KL by each trial's own β; else valid-loss)")
    p.add_argument("--evaluate", action="store_true", help="evaluate each trial when it ends (vaetui eval's "
                   "protocol on the test split: bounds, PSNR/SSIM, sample quality with the prior and the GMM, "
                   "disentanglement) and show the numbers in `sweep show` (always, for the families study)")
    p.add_argument("--storage", metavar="URL", help="an Optuna storage URL (sqlite:///x.db, postgresql://…) "
                   "instead of the journal file in the study folder")
    p.add_argument("--torchrun", type=int_in(2, 4096), metavar="N",
                   help="train each trial under torchrun with N processes (DistributedDataParallel)")
    p.add_argument("--resume", action="store_true", help="continue the study, resuming interrupted trials")
    p.add_argument("--join", action="store_true", help=argparse.SUPPRESS)  # a worker of an existing study
    p.add_argument("--worker-tag", help=argparse.SUPPRESS)
    p.add_argument("--sweep-seed", dest="sweep_seed", type=int_in(0, 2**31 - 1), default=0, help="the sampler's seed")
    p.add_argument("--json", action="store_true", help="(with show) print the study as JSON")
    p.add_argument("--out", metavar="FILE.png", help="(with show) write the rate-distortion plot")
    p.add_argument("--preset", choices=list(PRESETS), help="the trials' preset (default: the space's, else faces64)")
    add_setting_flags(p)
    add_runs_dir(p, must_exist=False)
    p.set_defaults(func=cmd_sweep)
