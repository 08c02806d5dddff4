"""Reconstruct: originals over reconstructions, paged, by split and checkpoint, beside a second run."""

from __future__ import annotations

from textual.binding import Binding

from vaetui.errors import VaeError
from vaetui.ui.screens.explore.base import ExploreScreen


class ReconstructScreen(ExploreScreen):
    """Originals over reconstructions: ←/→ pages, v valid/test, c cycles checkpoints (epoch scrubber)."""

    name_ = "reconstruct"
    BINDINGS = [
        Binding("left", "page(-1)", "page-"), Binding("right", "page(1)", "page+"),
        Binding("up", "select(-1)", "↑", show=False), Binding("down", "select(1)", "↓", show=False),
        Binding("v", "split", "valid/test"), Binding("c", "checkpoint", "checkpoint"),
        Binding("2", "compare", "compare run"),
    ]

    COLS = 8  # images a band (originals over reconstructions), as the seed shows them

    def __init__(self, run_name: str, checkpoint: str | None = None, n: int | None = None):
        super().__init__(run_name, checkpoint)
        self.fixed_n = n  # None: as many bands of 8 as fill the picture area
        self.start, self.split, self.compare, self.selected = 0, "test", None, 0

    @property
    def n(self) -> int:
        return self.fixed_n or self.COLS * (self.fitted or 1)

    def layout_for(self, cols: int, rows: int) -> int:
        from vaetui.pictures.layout import bands_that_fit

        if self.fixed_n or cols <= 0 or rows <= 0:
            return 1
        return bands_that_fit(3 if self.compare else 2, self.COLS, self.image_size, cols, rows)

    def zoom_view(self, figure):
        from vaetui.pictures.figures import zoom_column

        h, w = self.image_size
        kinds = 3 if "compare_losses" in figure.info else 2
        cols = figure.info.get("cols", len(figure.info["indices"]))
        return zoom_column(figure.image, min(self.selected, len(figure.info["indices"]) - 1), cols, kinds, w, h)

    def action_select(self, delta: int) -> None:
        if self.figure is not None:
            self.selected = max(0, min(len(self.figure.info["indices"]) - 1, self.selected + delta))
            self.query_one("#ex-info").set(self.info_text())
            if self.zoomed:
                self.redraw()

    def title_text(self) -> str:
        vs = f", then [b]{self.compare}[/]" if self.compare else ""
        return f"[b]{self.split} images {self.start}–{self.start + self.n - 1}: originals over reconstructions[/]{vs}"

    def compute(self, model, config):
        from vaetui.pictures.figures import reconstructions

        other = None
        if self.compare:
            loaded = self.app.models.get(self.app.store, self.compare, None)
            other = (loaded.model, loaded.config)
        return reconstructions(model, config, self.split, self.n, self.start, other, cols=min(self.COLS, self.n))

    def headless(self) -> list[str]:
        compare = ["--compare", self.compare] if self.compare else []
        return ["reconstruct", self.run_name, *self.checkpoint_flag(), "--split", self.split, "--n", str(self.n),
                "--start", str(self.start), "--cols", str(min(self.COLS, self.n)), *compare, "--out", "recon.png"]

    def info_text(self) -> str:
        if self.figure is None:
            return ""
        losses = self.figure.info["losses"]
        text = f"loss per image: {' '.join(f'{v:.0f}' for v in losses)}  mean {sum(losses) / len(losses):.1f}"
        if "compare_losses" in self.figure.info:
            other = self.figure.info["compare_losses"]
            text += f"  ·  {self.compare}: mean {sum(other) / len(other):.1f}"
        return text

    def action_page(self, delta: int) -> None:
        size = self.split_size()
        start = max(0, self.start + delta * self.n)
        if size is not None and start >= size:
            self.notify(f"that was the last page of the {self.split} split ({size} images)")
            return
        if start != self.start:
            self.start = start
            self.request()

    def split_size(self) -> int | None:
        """Images in the current split, as the worker found it (None before the first picture)."""
        return self.figure.info.get("split_size") if self.figure else None

    def action_split(self) -> None:
        self.split = "valid" if self.split == "test" else "test"
        self.request()

    def action_compare(self) -> None:
        """Cycle a second run (same image size) whose reconstructions of the same images form a third row."""
        mine = self.app.store.open(self.run_name).config().data.size
        names = []
        for name in self.app.store.names():
            if name == self.run_name:
                continue
            try:
                run = self.app.store.open(name)
                if run.config().data.size == mine and run.has_checkpoint():
                    names.append(name)
            except VaeError:
                continue
        if not names:
            self.notify("no other run with the same image size to compare with", severity="warning")
            return
        options = [None] + names
        i = options.index(self.compare) if self.compare in options else 0
        self.compare = options[(i + 1) % len(options)]
        self.request()

    def action_checkpoint(self) -> None:
        """best -> latest -> epoch-1 -> ... -> epoch-N -> best: watch reconstructions improve."""
        run = self.app.store.open(self.run_name)
        labels = ["best", "latest"] + [p.stem.removeprefix("ckpt-") for p in run.epoch_checkpoints()]
        labels = [lab for lab in labels if run.checkpoint_path(lab).exists()]
        if not labels:
            return
        current = self.checkpoint or "best"
        i = labels.index(current) if current in labels else -1
        self.checkpoint = labels[(i + 1) % len(labels)]
        self.request()

    def default_filename(self) -> str:
        return f"reconstruct-{self.run_name}-{self.split}-{self.start}.png"
