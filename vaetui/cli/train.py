"""`vaetui train` (headless training, resumable, torchrun-aware) and `vaetui model` (the network's layers).

The training flags are generated from the one list of settings in vaetui.config.settings: a new
setting there is a new flag here, with its help, type, range and choices.
"""

from __future__ import annotations

import argparse
import sys

from vaetui.cli.args import add_runs_dir, int_in
from vaetui.errors import VaeError


def setting_type(s):
    """An argparse type that parses and range-checks one setting."""
    from vaetui.errors import ConfigError

    def parse(text: str):
        try:
            value = s.parse(text)
            s.check(value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
        return value

    parse.__name__ = s.name
    return parse


def add_setting_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per setting (default None: 'not given', so a preset or config file fills it)."""
    from vaetui.config.settings import SETTINGS

    for s in SETTINGS:
        if s.name in skip:
            continue
        allowed = s.describe()
        help_text = s.help + (f" ({allowed})" if allowed and not s.choices else "")
        if s.kind is bool:
            p.add_argument(s.flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif s.choices and s.beyond is None:
            p.add_argument(s.flag, choices=s.choices, default=None, help=help_text)
        elif s.choices:  # its choices, or values of another form (a user's model): checked by the setting
            p.add_argument(s.flag, type=setting_type(s), default=None, metavar="{" + ",".join(s.choices) + ",FILE.py:CLASS}",
                           help=help_text)
        else:
            p.add_argument(s.flag, type=setting_type(s), default=None, metavar=s.metavar or s.kind.__name__.upper()
                           if s.kind != "size" else "HxW", help=help_text)


def given_settings(args: argparse.Namespace) -> dict:
    """The setting flags given on the command line, as flat overrides (None = not given)."""
    from vaetui.config.settings import SETTINGS

    return {s.name: getattr(args, s.name, None) for s in SETTINGS}


def build_train_config(args: argparse.Namespace):
    """Preset, then the config file, then flags (each overriding the one before)."""
    from vaetui.config.resolve import load_config_file, resolve

    return resolve(args.preset, load_config_file(args.config) if args.config else {}, given_settings(args))


def _resume_run(args: argparse.Namespace, store):
    """The run to resume and its config with the flags a resume may change; refuses the others."""
    from vaetui.config.resolve import resolve
    from vaetui.errors import ConfigError

    run = store.open(args.resume)
    if run.read_only:
        raise ConfigError("resume", f"run {run.name} is read-only: start a new run with vaetui train")
    current = run.config()
    if args.preset and args.preset != current.preset or args.config:
        raise ConfigError("resume", "--preset/--config cannot change an existing run: drop them or start a new run")
    cfg = resolve(None, given_settings(args), current=current)
    preflight(cfg)
    return run, cfg  # the trainer writes the changed settings once it holds the run's lock


def _new_run(args: argparse.Namespace, store):
    from vaetui.train.setup import check_data

    cfg = own_model(build_train_config(args))
    preflight(cfg)
    check_data(cfg)  # a missing folder or an empty split: said before a run folder exists
    return store.create(cfg, args.name), cfg


def own_model(cfg):
    """A user's model named on the command line: its path made absolute, the file recorded as this user's (it is code:
    vaetui.disk.trust), the class loaded and built once so a mistake in it is said before a run folder exists."""
    from vaetui.config.settings import MODELS

    if cfg.model.family in MODELS:
        return cfg
    from vaetui.config.resolve import with_overrides
    from vaetui.models.families import family_of
    from vaetui.models.user import absolute

    cfg = with_overrides(cfg, {"model": absolute(cfg.model.family)})
    family_of(cfg, trust=True).build(cfg)
    return cfg


def preflight(cfg) -> None:
    """What the machine must offer, checked before a run folder exists (vaetui.memory.preflight)."""
    import os

    from vaetui.models.memory import preflight as check

    check(cfg, int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"))))


def cmd_train_seeds(args: argparse.Namespace) -> int:
    """--seeds N: the same run N times, with seeds --seed, --seed + 1, … (default 0, 1, …), named NAME-s<seed>,
    one after another; they make one row of vaetui export --group-by seed."""
    import time

    from vaetui.errors import ConfigError

    if args.resume:
        raise ConfigError("seeds", "--seeds starts new runs: resume each with --resume NAME-sK instead")
    base = args.name or f"{build_train_config(args).preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    first = args.seed or 0
    for seed in range(first, first + args.seeds):
        print(f"seed {seed}: run {base}-s{seed}", file=sys.stderr)
        code = cmd_train(argparse.Namespace(**{**vars(args), "seed": seed, "name": f"{base}-s{seed}", "seeds": None}))
        if code != 0:
            return code
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a new run, or resume one, headless."""
    import signal

    if getattr(args, "seeds", None):
        return cmd_train_seeds(args)

    from vaetui.runtime import tune_allocator

    tune_allocator()
    from vaetui.train import distributed
    from vaetui.config.settings import RunConfig
    from vaetui.cli.console import print_json_events, print_progress
    from vaetui.train.engine import Control, Trainer
    from vaetui.runs.events import FailedEvent, FinishedEvent
    from vaetui.runs.store import Run, RunStore

    world = distributed.init()
    store = RunStore(args.runs_dir)
    shared = None
    if world.main:  # rank 0 alone touches the run folder; the others may be on nodes that lack it
        try:
            run, cfg = _resume_run(args, store) if args.resume else _new_run(args, store)
            shared = (run.name, cfg.to_json(), None)
        except VaeError as exc:
            shared = (None, None, str(exc))
    name, cfg_json, error = distributed.broadcast(shared, world)
    if error is not None:
        distributed.shutdown(world)
        raise VaeError(error)
    cfg = RunConfig.from_json(cfg_json)
    if not world.main:
        run = Run(store.root / name)  # never read or written on this rank
    control = Control()

    def on_signal(signum, _frame):
        control.stop()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    deliver = _alerts(args)
    try:
        events = Trainer(cfg, run, resume=bool(args.resume)).run(control)
        if world.main:
            from vaetui.runs.alerts import alerting

            events = alerting(events, run.name, deliver)
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
        deliver.wait()
    if isinstance(last, FailedEvent):
        if world.main:  # the same reason on every rank: said once
            print(f"vaetui: error: {last.error}", file=sys.stderr)
            if not args.resume and _never_trained(run):
                store.delete(run.name)  # a new run that failed before its first step holds nothing to keep
        return 1
    if isinstance(last, FinishedEvent) and last.reason == "stopped":
        return 130 if args.log_format != "json" else 0
    return 0


def _alerts(args: argparse.Namespace):
    """A run trained in a person's terminal alerts there (the bell, a desktop notification, tmux); --notify-cmd
    (or $VAETUI_NOTIFY_CMD) wherever it runs."""
    from vaetui.runs.alerts import Deliverer, notify_command

    term = sys.stderr if args.log_format == "rich" and sys.stderr.isatty() else None

    def write(text: str) -> None:
        term.write(text)
        term.flush()

    return Deliverer(notify_command(args.notify_cmd), write=write if term else None,
                     on_error=lambda m: print(f"vaetui: warning: {m}", file=sys.stderr))


def _never_trained(run) -> bool:
    """No checkpoint and no step in its log: what a new run whose data or set-up failed leaves."""
    from vaetui.runs.logfile import line_kind

    if run.has_checkpoint():
        return False
    try:
        return not any(line_kind(line) == "step" for line in run.metrics_path.read_bytes().splitlines())
    except FileNotFoundError:
        return True


def cmd_model(args: argparse.Namespace) -> int:
    """Print the layer table with output shapes and the parameter count."""
    from vaetui.config.presets import preset
    from vaetui.config.resolve import with_overrides
    from vaetui.models.families import family_of
    from vaetui.config.settings import setting
    from vaetui.models.vae import ConvVAE, decoder_paddings, layer_table, parameter_count

    cfg = with_overrides(preset(args.preset), {"model": args.model, "latent": args.latent, "hidden": args.hidden,
                                               "size": args.size})
    cfg.model.validate()  # the data root is not needed to describe the network
    cfg.data.validate() if cfg.data.source == "synthetic" else None
    if args.trust:
        cfg = own_model(cfg)  # a user's file named here with --trust: recorded as theirs
    elif cfg.model.family not in setting("model").choices:
        from vaetui.models.user import absolute

        cfg = with_overrides(cfg, {"model": absolute(cfg.model.family)})
    family = family_of(cfg)
    model = family.build(cfg)
    h, w = cfg.data.size
    print(f"{family.name} ({family.paper})" + (f": trains {', '.join(family.terms)} besides recon and KL"
                                               if family.terms else ""))
    print(f"{type(model).__name__}  preset={cfg.preset}  image=3x{h}x{w}  hidden={cfg.model.hidden}  latent={cfg.model.latent}")
    rows = layer_table(model)
    width = max(len(r[1]) for r in rows)
    print(f"{'layer':<14} {'type':<{width}}  {'output':<16} {'params':>12}")
    for name, kind, shape, n in rows:
        print(f"{name:<14} {kind:<{width}}  {'x'.join(map(str, shape)):<16} {n:>12,}")
    if isinstance(model, ConvVAE):
        pads, out_pad = decoder_paddings(h, w)
        print(f"decoder paddings: {', '.join(str(p) for p in pads)}" +
              (f"  output padding: {out_pad}" if any(out_pad) else ""))
    traced = sum(r[3] for r in rows)
    parts = {"critic": "the total-correlation critic (trained by its own optimiser)",
             "prior": "the PixelCNN prior over the codes (trained by its own optimiser, in the run's last steps)",
             "pseudo": f"{cfg.model.pseudo_inputs} pseudo-inputs, 3x{h}x{w} each (the VampPrior)"}
    own = {name: sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] == name) for name in parts}
    for name, n in own.items():
        if n:
            print(f"{name:<14} {parts[name]}  {n:,} parameters")
    if model.latent != cfg.model.latent:
        if hasattr(model, "map_shape"):
            what = (f"an {'x'.join(map(str, model.map_shape[1:]))} map of {cfg.model.latent}-number codebook vectors, "
                    f"{cfg.model.codebook_size} of them")
        elif hasattr(model, "low_shape"):
            what = f"the top level's {cfg.model.latent} and the lower level's {'x'.join(map(str, model.low_shape))} map"
        else:
            what = "the model's own"
        print(f"code           {model.latent:,} numbers an image ({what})")
    other = parameter_count(model) - traced - sum(own.values())
    if other:
        print(f"{'other':<14} parameters outside the traced encoder and decoder  {other:,} parameters")
    print(f"parameters: {parameter_count(model):,}")
    return 0


def register(sub) -> None:
    from vaetui.config.presets import PRESETS
    from vaetui.config.settings import setting

    p = sub.add_parser("model", help="print the network's layers, output shapes and parameter count")
    p.add_argument("--preset", default="seed", choices=list(PRESETS), help="preset to describe (default: %(default)s)")
    p.add_argument("--model", type=setting_type(setting("model")), help=setting("model").help,
                   metavar="{" + ",".join(setting("model").choices) + ",FILE.py:CLASS}")
    p.add_argument("--latent", type=setting_type(setting("latent")), help="latent size")
    p.add_argument("--hidden", type=setting_type(setting("hidden")), help="hidden channels c (encoder c, 2c, 4c, 8c)")
    p.add_argument("--size", type=setting_type(setting("size")), metavar="HxW", help="image size, e.g. 64 or 218x178")
    p.add_argument("--trust", action="store_true", help="--model FILE.py:CLASS: record the file as yours, so runs "
                   "that name it open here (a file is code: vaetui train records the files you name to it)")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("train", help="train a run headless (progress bar, one line per epoch)",
                       description="Train a new run (preset, then --config, then flags), or --resume one.")
    p.add_argument("--preset", choices=list(PRESETS), help="faces64 (default), seed, seed-l3, hvae64, vqvae64, tiny")
    p.add_argument("--config", metavar="FILE", help="TOML or JSON file of settings; flags override it")
    p.add_argument("--name", help="run name (default: <preset>-<date>-<time>)")
    add_runs_dir(p, must_exist=False)
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its newest good checkpoint")
    p.add_argument("--log-format", choices=("rich", "json"), default="rich")
    p.add_argument("--notify-cmd", metavar="CMD",
                   help="run CMD (a shell line) when the run finishes, fails, rolls back or collapses, the alert as "
                        "JSON on its standard input (default: $VAETUI_NOTIFY_CMD; never stored in the run)")
    p.add_argument("--seeds", type=int_in(1, 100), metavar="N",
                   help="train the same run N times with seeds 0 … N−1 (from --seed when given), named NAME-s<seed>, "
                        "one after another: a group for vaetui export --group-by seed")
    add_setting_flags(p)
    p.set_defaults(func=cmd_train)


__all__ = ["register", "build_train_config", "add_setting_flags", "given_settings", "int_in"]
