"""Lockstep: two to four runs on the same test images and z, at the same point of training, one scrubber for all."""

from __future__ import annotations

import re

from textual.binding import Binding

from vaetui.errors import VaeError
from vaetui.ui.screens.explore.base import ExploreScreen

EPOCH = re.compile(r"^ckpt-epoch-(\d+)\.pt$")


def common_points(store, names: list[str]) -> tuple[list[str], list[int]]:
    """The checkpoints every run has (epoch-N in order, then best and latest), and the first run's snapshot steps."""
    epochs, named = None, ["best", "latest"]
    for name in names:
        run = store.open(name)
        have = {int(m.group(1)) for p in run.path.glob("ckpt-epoch-*.pt") if (m := EPOCH.match(p.name))}
        epochs = have if epochs is None else epochs & have
        named = [n for n in named if run.checkpoint_path(n).exists()]
    snaps = [s for s, _ in store.open(names[0]).history(steps="none").snapshots]
    return [f"epoch-{e}" for e in sorted(epochs or ())] + named, snaps


class LockstepScreen(ExploreScreen):
    """Runs side by side at one point: ←/→ checkpoints, [ ] snapshots by step, f flips one run in place, e the
    per-pixel error, m reconstructions/samples/interpolation, space new z."""

    name_ = "lockstep"
    needs_model = False
    BINDINGS = [
        Binding("left", "point(-1)", "earlier"), Binding("right", "point(1)", "later"),
        Binding("left_square_bracket", "snapshot(-1)", "snapshot-"),
        Binding("right_square_bracket", "snapshot(1)", "snapshot+"),
        Binding("f", "flip", "flip A/B"), Binding("a", "all", "all rows"), Binding("e", "error", "error map"),
        Binding("m", "mode", "recon/samples/interp"), Binding("space", "reroll", "new z"),
    ]
    MODES = ("recon", "samples", "interp")

    def __init__(self, run_names: list[str], at: str = "best"):
        super().__init__(run_names[0])
        self.run_names = run_names
        self.at = at
        self.mode, self.error, self.seed = "recon", False, 0
        self.flip: int | None = None  # None: every run; k: run k alone, in the same place
        self.points: list[str] = []
        self.snaps: list[int] = []

    def on_mount(self) -> None:
        try:
            self.points, self.snaps = common_points(self.app.store, self.run_names)
        except VaeError:
            pass
        if self.at not in self.points and self.points:
            self.at = "best" if "best" in self.points else self.points[-1]
        super().on_mount()
        self.sub_title = "lockstep · " + " vs ".join(self.run_names)

    @property
    def show(self) -> str:
        return "error" if self.error and self.mode == "recon" else self.mode

    def title_text(self) -> str:
        who = "all" if self.flip is None else f"[b]{self.run_names[self.flip]}[/] alone (f)"
        return f"[b]{self.show}[/] at [b]{self.at}[/]  rows: {who}  [dim]←/→ checkpoints · [ ] snapshots · f flip · " \
               f"a all · e error · m mode[/]"

    def compute(self, _model, _config):
        from vaetui.pictures.lockstep import Member, lockstep, nearest_snapshot, same_data

        store = self.app.store
        runs = [store.open(n) for n in self.run_names]
        same_data({r.name: r.config() for r in runs})
        members = []
        for run in runs:
            if self.at.startswith("step-"):
                picture, step = nearest_snapshot(run, run.history(steps="none"), int(self.at[5:]))
                members.append(Member(run.name, snapshot=picture, snapshot_step=step))
            else:
                loaded = self.app.models.get(store, run.name, self.at)
                members.append(Member(run.name, loaded.model, loaded.config))
        return lockstep(members, self.show, self.at, self.seed)

    def view(self, figure):
        """All rows, or (flipped) the originals and one run's row, in the place the rows share."""
        if self.flip is None:
            return figure.image
        image, n_runs = figure.image, len(self.run_names)
        rows = n_runs + (1 if figure.info["originals"] else 0)
        step = (image.height - 2) // rows
        keep = ([0] if figure.info["originals"] else []) + [rows - n_runs + self.flip]
        from PIL import Image

        out = Image.new(image.mode, (image.width, 2 + step * len(keep)), image.getpixel((0, 0)))
        for i, r in enumerate(keep):
            out.paste(image.crop((0, r * step, image.width, 2 + (r + 1) * step)), (0, i * step))
        return out

    def headless(self) -> list[str]:
        return ["compare", *self.run_names, "--at", self.at, "--show", self.show, "--seed", str(self.seed),
                "--out", "compare.png"]

    def info_text(self) -> str:
        if self.figure is None:
            return ""
        info = self.figure.info
        if "steps" in info:
            where = "snapshots at " + ", ".join(f"{n} step {s}" for n, s in info["steps"].items())
        else:
            where = ", ".join(f"{n} {sum(v) / len(v):.1f}" for n, v in info.get("losses", {}).items())
            where = f"mean reconstruction loss: {where}" if where else f"z seed {self.seed}"
        return f"{where}  [dim]· headless: vaetui {' '.join(self.headless())}[/]"

    def default_filename(self) -> str:
        return f"lockstep-{'-'.join(self.run_names)}-{self.at}-{self.show}.png"

    def action_point(self, delta: int) -> None:
        if not self.points:
            self.notify("these runs share no checkpoint", severity="warning")
            return
        k = self.points.index(self.at) if self.at in self.points else len(self.points) - 1
        self.at = self.points[max(0, min(len(self.points) - 1, k + delta))]
        self.request()

    def action_snapshot(self, delta: int) -> None:
        if not self.snaps:
            self.notify("no training snapshots yet", severity="warning")
            return
        now = int(self.at[5:]) if self.at.startswith("step-") else (self.snaps[-1] if delta < 0 else -1)
        later = [s for s in self.snaps if (s > now if delta > 0 else s < now)]
        if later or not self.at.startswith("step-"):
            self.at = f"step-{(later[0] if delta > 0 else later[-1]) if later else self.snaps[-1]}"
            self.request()

    def action_flip(self) -> None:
        """One run at a time in the same place: A, B, (C, D,) A, …; `a` brings every row back."""
        self.flip = 0 if self.flip is None else (self.flip + 1) % len(self.run_names)
        self.query_one("#ex-title").set(self.title_text())
        self.redraw()

    def action_all(self) -> None:
        self.flip = None
        self.query_one("#ex-title").set(self.title_text())
        self.redraw()

    def action_error(self) -> None:
        self.error = not self.error
        if self.mode == "recon":
            self.request()

    def action_mode(self) -> None:
        self.mode = self.MODES[(self.MODES.index(self.mode) + 1) % len(self.MODES)]
        self.request()

    def action_reroll(self) -> None:
        self.seed += 1
        if self.mode != "recon":
            self.request()
