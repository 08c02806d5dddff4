"""Interpolate: a latent path t·z1 + (1−t)·z2 (or its slerp), one frame large above the strip."""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding

from vaetui.ui.screens.explore.base import ExploreScreen
from vaetui.ui.widgets.text import Quiet


class InterpolateScreen(ExploreScreen):
    """A latent path: ←/→ steps through frames (shown large above the strip), m lerp/slerp, x extrapolate."""

    name_ = "interpolate"
    BINDINGS = [
        Binding("left", "frame(-1)", "frame-"), Binding("right", "frame(1)", "frame+"),
        Binding("m", "mode", "lerp/slerp"), Binding("x", "extrapolate", "extrapolate"),
        Binding("space", "reroll", "new endpoints"), Binding("a", "save_gif", "save GIF"),
    ]

    def __init__(self, run_name: str, checkpoint: str | None = None, seed: int = 0, steps: int = 11):
        super().__init__(run_name, checkpoint)
        self.seed, self.steps, self.mode, self.extrapolate, self.frame = seed, steps, "lerp", 0.0, 0

    def title_text(self) -> str:
        extra = f"  extrapolate {self.extrapolate:g}" if self.extrapolate else ""
        return f"[b]{self.mode} between z1, z2 ~ N(0, I)[/]  seed {self.seed}{extra}"

    def compute(self, model, config):
        from vaetui.pictures.figures import interpolation

        return interpolation(model, config, self.steps, self.mode, self.seed, 1, None, self.extrapolate)

    def view(self, figure):
        from vaetui.pictures.figures import interpolation_view

        return interpolation_view(figure, self.frame, self.fitted)

    def layout_for(self, cols: int, rows: int):
        return (cols, rows)  # the large frame's factor follows the area (the strip does not change)

    def zoom_view(self, figure):
        return figure.frames[max(0, min(self.frame, len(figure.frames) - 1))]

    def headless(self) -> list[str]:
        """The strip below the large frame (a GIF of the frames: --out FILE.gif)."""
        extrapolate = ["--extrapolate", f"{self.extrapolate:g}"] if self.extrapolate else []
        return ["interpolate", self.run_name, *self.checkpoint_flag(), "--seed", str(self.seed), "--steps",
                str(self.steps), "--mode", self.mode, "--pairs", "1", *extrapolate, "--out", "interpolate.png"]

    def info_text(self) -> str:
        if self.figure is None:
            return ""
        t = self.figure.info["t"][self.frame]
        norm = self.figure.info["norms"][0][self.frame]
        norms = " ".join(f"{v:.1f}" for v in self.figure.info["norms"][0])
        return f"frame {self.frame + 1}/{len(self.figure.frames)}  t {t:g}  ‖z‖ {norm:.2f}   [dim]‖z‖ along the path: {norms}[/]"

    def action_frame(self, delta: int) -> None:
        if self.figure:
            self.frame = max(0, min(len(self.figure.frames) - 1, self.frame + delta))
            self.query_one("#ex-info", Quiet).set(self.info_text())
            self.redraw()

    def action_mode(self) -> None:
        self.mode = "slerp" if self.mode == "lerp" else "lerp"
        self.request()

    def action_extrapolate(self) -> None:
        self.extrapolate = 0.0 if self.extrapolate else 0.5
        self.request()

    def action_reroll(self) -> None:
        self.seed += 1
        self.request()

    def default_filename(self) -> str:
        return f"interpolate-{self.run_name}-seed{self.seed}.png"

    def action_save_gif(self) -> None:
        if self.figure:
            from vaetui.pictures.imaging import save_gif

            path = save_gif(self.figure.frames, Path.cwd() / f"interpolate-{self.run_name}-seed{self.seed}.gif")
            self.notify(f"saved {path}")
