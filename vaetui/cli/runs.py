"""`vaetui runs` (the run store, listed), `vaetui monitor RUN`, and opening the TUI itself.

This is the one CLI module that starts Textual, and only inside run_tui().
"""

from __future__ import annotations

import argparse
import os
import sys

from vaetui.cli.args import add_runs_dir, float_in, int_in
from vaetui.errors import VaeError

IMAGE_CHOICES = ("auto", "halfcell", "sixel", "kitty", "unicode", "none")
COLOR_CHOICES = ("auto", "truecolor", "256")


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs with their status and best validation loss."""
    import json
    import time

    from vaetui.runs.store import RunStore

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
    for col in ("run", "model", "preset", "data", "size", "latent", "β", "epochs", "best valid", "status", "updated"):
        table.add_column(col, justify="right" if col in ("latent", "β", "epochs", "best valid") else "left")
    for i in infos:
        table.add_row(i.name + (" (read-only)" if i.read_only else ""), i.model, i.preset, i.data, i.size, str(i.latent),
                      f"{i.beta:g}", f"{i.epochs_done}/{i.epochs}",
                      "-" if i.best_valid is None else f"{i.best_valid:.2f}", i.status,
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(i.updated)))
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # a pipe: no wrapping
    console.print(table)
    since_you_left(RunStore(args.runs_dir).root, infos, console.print)
    return 0


def since_you_left(root, infos, say) -> None:
    """What moved since this person last listed the runs (here or in the TUI's runs list), then this look kept."""
    from vaetui.runs.digest import key, list_digest, list_look, looks, remember

    paths = {i.name: root / i.name for i in infos if not i.read_only}
    text = list_digest(infos, looks([key(p, "list") for p in paths.values()]), paths)
    if text:
        say("\n" + text)
    remember({key(paths[i.name], "list"): list_look(i) for i in infos if i.name in paths})


def tmux_passthrough() -> bool:
    """Inside tmux, does it pass graphics escape sequences through to the terminal (allow-passthrough on)?"""
    import subprocess

    try:
        out = subprocess.run(["tmux", "show-options", "-gv", "allow-passthrough"], capture_output=True, text=True,
                             timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() in ("on", "all")


def choose_renderer(image: str) -> str:
    """The picture renderer to use: 'auto' never probes inside tmux without passthrough (tmux answers, not the
    terminal behind it, and the pictures would not get through), and falls back to half blocks there."""
    if image == "auto" and os.environ.get("TMUX") and not tmux_passthrough():
        return "halfcell"
    return image


def run_tui(runs_dir=None, threads=None, device="auto", image="halfcell", monitor=None, colors="auto") -> int:
    """Open the terminal app (needs a terminal)."""
    from vaetui.runs.store import RunStore

    if monitor is not None:
        RunStore(runs_dir).open(monitor)  # a missing run is a one-line error, before the screen opens
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise VaeError("the vaetui TUI needs a terminal; for scripts use the sub-commands (vaetui --help)")
    import gc

    from vaetui.runtime import quiet_openmp, tune_allocator

    # Importing Textual and drawing the first frame make objects by the hundred thousand and free almost none of
    # them: collecting meanwhile only delays that frame. The app freezes them and collects again once it is drawn.
    gc.disable()
    quiet_openmp()  # before torch is imported: idle OpenMP threads must not spin beside the UI
    tune_allocator()
    from vaetui.ui.app import make_app
    from vaetui.ui.widgets.picture import picture_class

    image = choose_renderer(image)
    if image not in ("halfcell", "none"):
        picture_class(image)  # textual-image probes the terminal when imported: before the app starts
    app = make_app(runs_dir=runs_dir, threads=threads, device=device, image=image, monitor=monitor, colors=colors)
    code = app.run() or 0
    app.deliver.wait()  # an alert raised just before quitting still reaches its command
    return code


def set_alerts(notify_cmd: str | None, quiet_after: float | None) -> None:
    """--notify-cmd and --quiet-after for this process and the study workers it starts (never for a trainer it
    starts: whoever follows a run alerts, vaetui.train.process)."""
    if notify_cmd:
        os.environ["VAETUI_NOTIFY_CMD"] = notify_cmd
    if quiet_after:
        os.environ["VAETUI_QUIET_AFTER"] = str(quiet_after)


def add_alert_args(p: argparse.ArgumentParser, dest: str = "") -> None:
    p.add_argument("--notify-cmd", dest=f"{dest}notify_cmd", metavar="CMD",
                   help="also run CMD (a shell line) at each alert, the alert as JSON on its standard input: a run "
                        "finished, failed, rolled back, collapsed or went quiet (default: $VAETUI_NOTIFY_CMD); the "
                        "bell, a desktop notification (OSC 9/777) and tmux's message need nothing")
    p.add_argument("--quiet-after", dest=f"{dest}quiet_after", type=float_in(1, 10**7), metavar="SECONDS",
                   help="a live run that logs nothing this long is said to be quiet (default 600)")


def cmd_monitor(args: argparse.Namespace) -> int:
    """The monitor screen for a run trained elsewhere (follows its metrics.jsonl)."""
    set_alerts(args.notify_cmd, args.quiet_after)
    return run_tui(runs_dir=args.runs_dir, image=args.image, monitor=args.run, colors=args.colors)


def add_tui_args(parser: argparse.ArgumentParser) -> None:
    """The bare `vaetui` command's options (the TUI)."""
    parser.add_argument("--runs-dir", dest="tui_runs_dir", metavar="DIR", help="run store (default: ./checkpoints); before a command, that command's")
    parser.add_argument("--threads", dest="tui_threads", type=int_in(1, 1024), metavar="N",
                        help="torch threads for training in the TUI")
    parser.add_argument("--device", dest="tui_device", choices=("auto", "cpu", "cuda"), default=None,
                        help="where the TUI trains (default: auto)")
    parser.add_argument("--image", dest="tui_image", default="halfcell", choices=IMAGE_CHOICES,
                        help="how to draw images (default: halfcell, works over SSH and in tmux)")
    parser.add_argument("--colors", dest="tui_colors", default="auto", choices=COLOR_CHOICES,
                        help="picture colours: truecolor, or the 256-colour palette (about half the bytes); "
                             "auto: truecolor when $COLORTERM says so")
    add_alert_args(parser, "tui_")


def register(sub) -> None:
    p = sub.add_parser("monitor", help="watch a run that another process trains (the TUI's monitor)")
    p.add_argument("run", metavar="RUN")
    add_runs_dir(p)
    p.add_argument("--image", default="halfcell", choices=IMAGE_CHOICES)
    p.add_argument("--colors", default="auto", choices=COLOR_CHOICES, help="picture colours (see vaetui --help)")
    add_alert_args(p)
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("runs", help="list runs: status, settings, best validation loss")
    add_runs_dir(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
