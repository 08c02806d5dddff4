"""Data: the seed's 32 random training images, their attributes, and the image-space blend of two."""

from __future__ import annotations


from textual.binding import Binding

from vaetui.ui.screens.explore.base import ExploreScreen
from vaetui.ui.widgets.text import Quiet


class DataScreen(ExploreScreen):
    """The seed's 32 random training images: arrows select, space picks two, their blend appears below."""

    name_ = "data"
    needs_model = False
    BINDINGS = [
        Binding("e", "reroll", "new examples"),
        Binding("left", "move(-1)", "←", show=False), Binding("right", "move(1)", "→", show=False),
        Binding("up", "move(-8)", "↑", show=False), Binding("down", "move(8)", "↓", show=False),
        Binding("space", "pick", "pick for blend"),
    ]
    COLS = 8
    ALPHAS = (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)

    def __init__(self, run_name: str, seed: int = 0):
        super().__init__(run_name)
        self.seed, self.selected, self.picked = seed, 0, []

    def title_text(self) -> str:
        return f"[b]32 random training images[/]  seed {self.seed}  [dim]arrows select · space picks two to blend[/]"

    def compute(self, model, config):
        from vaetui.pictures.figures import data_blend, data_grid

        grid = data_grid(config.data, self.seed, 32, self.COLS)
        picked = list(self.picked)
        if len(picked) == 2:
            i, j = (grid.info["indices"][k] for k in picked)
            grid.info["blend"] = data_blend(config.data, i, j, self.ALPHAS)
        return grid

    def view(self, figure):
        from vaetui.pictures.figures import data_view

        return data_view(figure, figure.info.get("blend"), self.selected, list(self.picked), self.COLS, self.image_size)

    def zoom_view(self, figure):
        from vaetui.pictures.figures import zoom

        h, w = self.image_size
        return zoom(figure.image, self.selected, self.COLS, w, h)

    @property
    def blend(self):
        return self.figure.info.get("blend") if self.figure else None

    def info_text(self) -> str:
        if self.figure is None:
            return ""
        info = self.figure.info
        idx = info["indices"][self.selected]
        names = [n for n, on in zip(info["attribute_names"], info["attributes"][self.selected]) if on]
        text = f"image {idx}: {', '.join(names) or 'no attributes set'}"
        if self.blend is not None:
            i, j = self.blend.info["indices"]
            text += f"   ·  blend α·X{i} + (1−α)·X{j}, α = −0.5 … 1.5"
        return text

    def action_reroll(self) -> None:
        self.seed += 1
        self.picked, self.selected = [], 0
        self.request()

    def action_move(self, delta: int) -> None:
        if self.figure is None:
            return
        self.selected = max(0, min(len(self.figure.info["indices"]) - 1, self.selected + delta))
        self.query_one("#ex-info", Quiet).set(self.info_text())
        self.redraw()

    def action_pick(self) -> None:
        if self.selected in self.picked:
            self.picked.remove(self.selected)
        else:
            self.picked = (self.picked + [self.selected])[-2:]
        self.request()

    def default_filename(self) -> str:
        return f"data-seed{self.seed}.png"
