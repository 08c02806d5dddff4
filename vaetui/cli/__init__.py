"""The one entry point: `vaetui` opens the TUI; its sub-commands are the screens' headless twins.

One module per command group, each declaring its arguments beside the code that reads them:
train (train, model), data, explore (sample, reconstruct, interpolate), evaluate (eval,
plot), runs (runs, monitor, the TUI), sweep, export (tables to publish).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from vaetui import __version__
from vaetui.cli import data, evaluate, explore, export, runs, sweep, train
from vaetui.cli.args import Parser
from vaetui.errors import VaeError

GROUPS = (train, data, runs, explore, evaluate, sweep, export)


def build_parser() -> Parser:
    """The argument parser for `vaetui` and its sub-commands."""
    parser = Parser(prog="vaetui", description="Train and explore variational autoencoders from a terminal. "
                    "With no command, opens the TUI.")
    parser.add_argument("--version", action="version", version=f"vaetui {__version__}")
    runs.add_tui_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in GROUPS:
        group.register(sub)
    parser.commands = sub.choices  # name -> its parser: an unknown flag is answered by its command's parser
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run vaetui; errors a user can cause print one line and return non-zero."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the sub-command's parser, which points to its own --help
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is not None:
        _hand_down(parser.commands[args.command], args)
    try:
        if args.command is None:
            runs.set_alerts(args.tui_notify_cmd, args.tui_quiet_after)
            return runs.run_tui(runs_dir=args.tui_runs_dir, threads=args.tui_threads, device=args.tui_device or "auto",
                                image=args.tui_image, colors=args.tui_colors)
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


CARRIED = ("runs_dir", "threads", "device", "notify_cmd", "quiet_after")


def _hand_down(command: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`vaetui --runs-dir D train …`: an option given before the command is the command's own when it has one and
    was not given again after it (it was read into the TUI's settings and silently dropped)."""
    for name in CARRIED:
        given = getattr(args, f"tui_{name}", None)
        if given is None or not hasattr(args, name) or getattr(args, name) is not None:
            continue
        action = next((a for a in command._actions if a.dest == name), None)
        if isinstance(given, str) and action is not None and action.type is not None:
            try:
                given = action.type(given)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                command.error(f"argument {'/'.join(action.option_strings)}: {exc}")
        setattr(args, name, given)


if __name__ == "__main__":
    sys.exit(main())
