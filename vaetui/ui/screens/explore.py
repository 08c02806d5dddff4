"""Explore a model: generate, interpolate, reconstruct, and the data itself.

Each screen asks vaetui.figures for the same picture its headless twin writes, in a
worker thread (a new request cancels the one in flight), and shows it inline.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import get_current_worker

from vaetui.errors import VaeError
from vaetui.ui.widgets.text import Quiet
from vaetui.ui.widgets.picture import fit_picture, picture_class


class ModelCache:
    """Loaded models by (run, checkpoint), so switching screens does not reload."""

    def __init__(self):
        self._models: dict[tuple[str, str], tuple] = {}

    def get(self, store, run_name: str, checkpoint: str):
        key = (run_name, checkpoint)
        if key not in self._models:
            from vaetui.figures import model_for

            run = store.open(run_name)
            self._models[key] = (run, *model_for(run, checkpoint))
            import gc

            gc.freeze()  # torch is loaded now: keep full collections from walking its objects
        return self._models[key]


class ExploreScreen(Screen[None]):
    """Base: a title line, one large picture, an info line; subclasses' compute(model, config) runs in a worker."""

    BINDINGS = [Binding("s", "save", "save PNG")]
    name_ = "explore"
    needs_model = True

    def __init__(self, run_name: str, checkpoint: str | None = None):
        super().__init__()
        self.run_name = run_name
        self.checkpoint = checkpoint
        self.figure = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Quiet("", id="ex-title")
        with Vertical(id="ex-body"):
            yield picture_class(self.app.image)(None, id="ex-picture")
        yield Quiet("", id="ex-info")
        yield Footer()

    def on_mount(self) -> None:
        self.title, self.sub_title = "vaetui", f"{self.name_} · {self.run_name}"
        self.request()

    def on_resize(self) -> None:
        self._show()

    def title_text(self) -> str:
        return ""

    def request(self) -> None:
        """Recompute the picture for the current settings (cancels a computation in flight)."""
        self.query_one("#ex-title", Quiet).set(self.title_text() + "  [dim]computing…[/]")
        self._compute()

    @work(thread=True, exclusive=True, group="explore", exit_on_error=False)
    def _compute(self) -> None:
        try:
            if self.needs_model:
                run, model, config, path, warnings = self.app.models.get(self.app.store, self.run_name, self.checkpoint)
            else:
                run = self.app.store.open(self.run_name)
                model, config, path = None, run.config(), run.config_path
            figure = self.compute(model, config)
        except Exception as exc:  # any failure is shown, and "computing…" cleared: the screen never hangs
            message = str(exc) if isinstance(exc, VaeError) else f"{type(exc).__name__}: {exc}"
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self._failed, message.splitlines()[0] if message else type(exc).__name__)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._done, figure, path)

    def _failed(self, message: str) -> None:
        self.query_one("#ex-title", Quiet).set(self.title_text() + f"  [red]{message}[/]")
        self.notify(message, severity="error")

    def _done(self, figure, path) -> None:
        self.figure = figure
        self.checkpoint_path = path
        source = f"  [dim]{path.name}[/]" if self.needs_model else ""
        self.query_one("#ex-title", Quiet).set(self.title_text() + source)
        self.query_one("#ex-info", Quiet).set(self.info_text())
        self._show()

    def picture(self):
        return self.figure.image if self.figure else None

    def info_text(self) -> str:
        return ""

    def _show(self) -> None:
        body = self.query_one("#ex-body")
        fit_picture(self.query_one("#ex-picture"), self.picture(), body.size.width, body.size.height)

    def default_filename(self) -> str:
        return f"{self.name_}-{self.run_name}.png"

    def action_save(self) -> None:
        if self.figure is None:
            return
        from vaetui.imaging import save_image

        path = save_image(self.figure.image, Path.cwd() / self.default_filename())
        self.notify(f"saved {path}")


class GenerateScreen(ExploreScreen):
    """Faces from z ~ N(0, T² I): r re-rolls, [ ] step the seed, - + the temperature."""

    name_ = "generate"
    BINDINGS = [
        Binding("r", "reroll", "re-roll"),
        Binding("left_square_bracket", "seed(-1)", "seed-"), Binding("right_square_bracket", "seed(1)", "seed+"),
        Binding("minus", "temperature(-0.1)", "T-"), Binding("plus,equals_sign", "temperature(0.1)", "T+"),
    ]

    def __init__(self, run_name: str, checkpoint: str | None = None, seed: int = 0, temperature: float = 1.0, n: int = 32):
        super().__init__(run_name, checkpoint)
        self.seed, self.temperature, self.n = seed, temperature, n

    def title_text(self) -> str:
        return f"[b]{self.n} faces from z ~ N(0, T²I)[/]  seed {self.seed}  T {self.temperature:.1f}"

    def compute(self, model, config):
        from vaetui.figures import samples

        return samples(model, self.n, self.seed, self.temperature)

    def info_text(self) -> str:
        return (f"[dim]headless: vaetui sample {self.run_name} --seed {self.seed} --temperature {self.temperature:g} "
                f"--out samples.png[/]")

    def default_filename(self) -> str:
        return f"samples-{self.run_name}-seed{self.seed}.png"

    def action_reroll(self) -> None:
        self.action_seed(1)

    def action_seed(self, delta: int) -> None:
        self.seed = max(0, self.seed + delta)
        self.request()

    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(3.0, max(0.1, self.temperature + delta)), 1)
        self.request()


class InterpolateScreen(ExploreScreen):
    """A latent path: ←/→ steps through frames (shown large above the strip), m lerp/slerp, x extrapolate."""

    name_ = "interpolate"
    BINDINGS = [
        Binding("left", "frame(-1)", "frame-"), Binding("right", "frame(1)", "frame+"),
        Binding("m", "mode", "lerp/slerp"), Binding("x", "extrapolate", "extrapolate"),
        Binding("r", "reroll", "new endpoints"), Binding("a", "save_gif", "save GIF"),
    ]

    def __init__(self, run_name: str, checkpoint: str | None = None, seed: int = 0, steps: int = 11):
        super().__init__(run_name, checkpoint)
        self.seed, self.steps, self.mode, self.extrapolate, self.frame = seed, steps, "lerp", 0.0, 0

    def title_text(self) -> str:
        extra = f"  extrapolate {self.extrapolate:g}" if self.extrapolate else ""
        return f"[b]{self.mode} between z1, z2 ~ N(0, I)[/]  seed {self.seed}{extra}"

    def compute(self, model, config):
        from vaetui.figures import interpolation

        return interpolation(model, config, self.steps, self.mode, self.seed, 1, None, self.extrapolate)

    def picture(self):
        if self.figure is None:
            return None
        from PIL import Image

        frames, strip = self.figure.frames, self.figure.image
        self.frame = max(0, min(self.frame, len(frames) - 1))
        big = frames[self.frame]
        scale = max(1, strip.height * 3 // big.height)
        big = big.resize((big.width * scale, big.height * scale), Image.Resampling.NEAREST)
        out = Image.new("RGB", (max(strip.width, big.width), big.height + 4 + strip.height), (24, 24, 24))
        out.paste(big, ((out.width - big.width) // 2, 0))
        out.paste(strip, (0, big.height + 4))
        return out

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
            self._show()

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
            from vaetui.imaging import save_gif

            path = save_gif(self.figure.frames, Path.cwd() / f"interpolate-{self.run_name}-seed{self.seed}.gif")
            self.notify(f"saved {path}")


class ReconstructScreen(ExploreScreen):
    """Originals over reconstructions: ←/→ pages, v valid/test, c cycles checkpoints (epoch scrubber)."""

    name_ = "reconstruct"
    BINDINGS = [
        Binding("left", "page(-1)", "page-"), Binding("right", "page(1)", "page+"),
        Binding("v", "split", "valid/test"), Binding("c", "checkpoint", "checkpoint"),
        Binding("2", "compare", "compare run"),
    ]

    def __init__(self, run_name: str, checkpoint: str | None = None, n: int = 8):
        super().__init__(run_name, checkpoint)
        self.n, self.start, self.split, self.compare = n, 0, "test", None

    def title_text(self) -> str:
        vs = f", then [b]{self.compare}[/]" if self.compare else ""
        return f"[b]{self.split} images {self.start}–{self.start + self.n - 1}: originals over reconstructions[/]{vs}"

    def compute(self, model, config):
        from vaetui.figures import reconstructions

        other = None
        if self.compare:
            _, other_model, other_cfg, _, _ = self.app.models.get(self.app.store, self.compare, None)
            other = (other_model, other_cfg)
        return reconstructions(model, config, self.split, self.n, self.start, other)

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
        for info in self.app.store.infos():
            if info.name != self.run_name and info.size == f"{mine[0]}x{mine[1]}":
                if self.app.store.open(info.name).checkpoint_candidates():
                    names.append(info.name)
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


class DataScreen(ExploreScreen):
    """The seed's 32 random training images: arrows select, space picks two, their blend appears below."""

    name_ = "data"
    needs_model = False
    BINDINGS = [
        Binding("r", "reroll", "re-roll"),
        Binding("left", "move(-1)", "←", show=False), Binding("right", "move(1)", "→", show=False),
        Binding("up", "move(-8)", "↑", show=False), Binding("down", "move(8)", "↓", show=False),
        Binding("space", "pick", "pick for blend"),
    ]
    COLS = 8
    ALPHAS = (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)

    def __init__(self, run_name: str, seed: int = 0):
        super().__init__(run_name)
        self.seed, self.selected, self.picked = seed, 0, []
        self.blend = None

    def title_text(self) -> str:
        return f"[b]32 random training images[/]  seed {self.seed}  [dim]arrows select · space picks two to blend[/]"

    def compute(self, model, config):
        from vaetui.figures import data_blend, data_grid

        self.data_config = config.data
        grid = data_grid(config.data, self.seed, 32, self.COLS)
        if len(self.picked) == 2:
            i, j = (grid.info["indices"][k] for k in self.picked)
            self.blend = data_blend(config.data, i, j, self.ALPHAS)
        else:
            self.blend = None
        return grid

    def picture(self):
        if self.figure is None:
            return None
        from PIL import Image, ImageDraw

        img = self.figure.image.copy()
        n = len(self.figure.info["indices"])
        tile = (img.width - 2) / self.COLS
        draw = ImageDraw.Draw(img)
        for k, colour in [(p, (80, 160, 255)) for p in self.picked] + [(self.selected, (255, 200, 0))]:
            if k < n:
                r, c = divmod(k, self.COLS)
                x0, y0 = round(c * tile), round(r * tile)
                draw.rectangle([x0, y0, x0 + round(tile) + 1, y0 + round(tile) + 1], outline=colour, width=2)
        if self.blend is None:
            return img
        strip = self.blend.image
        scale = img.width / strip.width
        strip = strip.resize((img.width, max(1, round(strip.height * scale))), Image.Resampling.BILINEAR)
        out = Image.new("RGB", (img.width, img.height + 4 + strip.height), (24, 24, 24))
        out.paste(img, (0, 0))
        out.paste(strip, (0, img.height + 4))
        return out

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
        self._show()

    def action_pick(self) -> None:
        if self.selected in self.picked:
            self.picked.remove(self.selected)
        else:
            self.picked = (self.picked + [self.selected])[-2:]
        self.request()

    def default_filename(self) -> str:
        return f"data-seed{self.seed}.png"


class LatentScreen(ExploreScreen):
    """What the code holds: dimensions by KL (↑/↓), traversal ±3σ, attribute vectors (a, - +), scatter (p)."""

    name_ = "latent"
    BINDINGS = [
        Binding("up", "dim(-1)", "dim-"), Binding("down", "dim(1)", "dim+"),
        Binding("left_square_bracket", "image(-1)", "image-"), Binding("right_square_bracket", "image(1)", "image+"),
        Binding("a", "attribute", "attribute"),
        Binding("minus", "amount(-0.5)", "less"), Binding("plus,equals_sign", "amount(0.5)", "more"),
        Binding("p", "scatter", "scatter"),
    ]

    def __init__(self, run_name: str, checkpoint: str | None = None):
        super().__init__(run_name, checkpoint)
        self.rank, self.image, self.attr_index, self.amount, self.show_scatter = 0, 0, 0, 1.0, False
        self.encoded = None

    def title_text(self) -> str:
        return "[b]latent space[/]  [dim]↑/↓ dimension · [ ] image · a attribute · - + amount · p scatter[/]"

    def compute(self, model, config):
        from PIL import Image

        from vaetui import figures

        if self.encoded is None:
            mu, logvar, names, attrs = figures.encode_split(model, config, "valid", 512)
            self.encoded = (mu, logvar, names, attrs, figures.latent_ranking(mu, logvar))
        mu, logvar, names, attrs, ranking = self.encoded
        self.rank = max(0, min(self.rank, len(ranking) - 1))
        self.image = max(0, min(self.image, len(mu) - 1))
        row = ranking[self.rank]
        base = mu[self.image]
        parts = [figures.traversal(model, config, base, row["dim"], spread=max(row["mu_std"], 1e-3)).image]
        self.attribute = names[self.attr_index % len(names)] if names else None
        self.attr_error = ""
        if self.show_scatter:
            parts.append(figures.scatter(mu, names, attrs, self.attribute).image)
        elif self.attribute:
            try:
                vec = figures.attribute_vector(mu, names, attrs, self.attribute)
                amounts = [round(self.amount * k, 2) for k in (-2, -1, 0, 1, 2)]
                parts.append(figures.attribute_strip(model, base, vec, amounts).image)
            except VaeError as exc:
                self.attr_error = str(exc)
        width = max(p.width for p in parts)
        out = Image.new("RGB", (width, sum(p.height for p in parts) + 4 * (len(parts) - 1)), (24, 24, 24))
        y = 0
        for p in parts:
            out.paste(p, ((width - p.width) // 2, y))
            y += p.height + 4
        return figures.Figure(out, {"ranking": ranking, "row": row})

    def info_text(self) -> str:
        if self.figure is None:
            return ""
        ranking, row = self.figure.info["ranking"], self.figure.info["row"]
        active = sum(r["active"] for r in ranking)
        top = " ".join(f"{'*' if r['active'] else ''}z{r['dim']}:{r['kl']:.1f}" for r in ranking[:10])
        lower = f"[b]{self.attribute}[/] ×{self.amount:g} (−2…+2)" if self.attribute and not self.show_scatter else ""
        if self.show_scatter:
            lower = f"scatter of μ coloured by [b]{self.attribute}[/] (orange: has it)"
        return (f"z{row['dim']} (rank {self.rank + 1}) KL {row['kl']:.2f} σ(μ) {row['mu_std']:.2f} "
                f"{'active' if row['active'] else 'inactive'} · image {self.image} · {lower} {self.attr_error}\n"
                f"[dim]active {active}/{len(ranking)} · by KL: {top}[/]")

    def action_dim(self, delta: int) -> None:
        self.rank += delta
        self.request()

    def action_image(self, delta: int) -> None:
        self.image = max(0, self.image + delta)
        self.request()

    def action_attribute(self) -> None:
        self.attr_index += 1
        self.request()

    def action_amount(self, delta: float) -> None:
        self.amount = max(0.5, min(4.0, self.amount + delta))
        self.request()

    def action_scatter(self) -> None:
        self.show_scatter = not self.show_scatter
        self.request()


class CompareScreen(ExploreScreen):
    """Two or more runs: learning curves overlaid, numbers side by side, reconstructions of the same images."""

    name_ = "compare"
    BINDINGS = [Binding("left", "page(-1)", "page-"), Binding("right", "page(1)", "page+"),
                Binding("l", "log", "log y"), Binding("e", "per_step", "per epoch/step")]

    def __init__(self, run_names: list[str]):
        super().__init__(run_names[0])
        self.run_names = run_names
        self.start = 0
        self.per_step = False

    def compose(self) -> ComposeResult:
        from vaetui.ui.widgets.chart import Chart

        yield Header()
        yield Quiet("", id="ex-title")
        yield Chart(id="cmp-chart")
        yield Quiet("", id="cmp-table")
        with Vertical(id="ex-body"):
            yield picture_class(self.app.image)(None, id="ex-picture")
        yield Quiet("", id="ex-info")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = "compare · " + " vs ".join(self.run_names)
        self._draw_curves_and_table()

    def title_text(self) -> str:
        what = "training loss per step" if self.per_step else "train (dim) and validation loss per epoch"
        return f"[b]{what}, numbers, test reconstructions[/]  [dim]e per epoch/step · rows: originals, " + \
            ", ".join(self.run_names) + "[/]"

    def _draw_curves_and_table(self) -> None:
        from vaetui.ui.widgets.chart import Chart

        colours = ["cyan", "magenta", "yellow", "green", "red", "blue"]
        lines, cells = [], []
        for k, name in enumerate(self.run_names):
            run = self.app.store.open(name)
            events, _ = run.read_events()
            epochs = [e for e in events if e.get("type") == "epoch"]
            colour = colours[k % 6]
            if self.per_step:
                steps = [e for e in events if e.get("type") == "step"]
                lines.append((f"{name} train/step", [e["step"] for e in steps], [e["loss"] for e in steps], colour))
            else:
                lines.append((f"{name} valid", [e["step"] for e in epochs], [e["valid_loss"] for e in epochs], colour))
                lines.append((f"{name} train", [e["step"] for e in epochs], [e["train_loss"] for e in epochs],
                              f"dim {colour}"))
            info = run.info()
            stored = sorted((run.path / "eval").glob("*.json")) if (run.path / "eval").is_dir() else []
            extra = ""
            if stored:
                import json

                r = json.loads(stored[-1].read_text())
                extra = (f"  PSNR {r['psnr']:.1f}  IWAE {r['per_image']['iwae_nll']:.1f}  "
                         f"active {r['active_units']}/{r['latent']}")
            best = "-" if info.best_valid is None else f"{info.best_valid:.1f}"
            cells.append(f"[{colours[k % 6]}]■[/] [b]{name}[/]  latent {info.latent}  β {info.beta:g}  "
                         f"epochs {info.epochs_done}/{info.epochs}  best valid {best}{extra}")
        self.query_one("#cmp-chart", Chart).set_series(lines)
        self.query_one("#cmp-table", Quiet).set("\n".join(cells))

    def compute(self, model, config):
        from vaetui.figures import reconstructions

        others = []
        for name in self.run_names[1:]:
            _, m, c, _, _ = self.app.models.get(self.app.store, name, None)
            others.append((m, c))
        return reconstructions(model, config, "test", 8, self.start, others)

    def info_text(self) -> str:
        if self.figure is None:
            return ""
        means = [sum(v) / len(v) for v in [self.figure.info["losses"], *self.figure.info.get("compare_losses_all", [])]]
        return "mean reconstruction loss on these images: " + ", ".join(
            f"{n} {m:.1f}" for n, m in zip(self.run_names, means))

    def action_page(self, delta: int) -> None:
        self.start = max(0, self.start + 8 * delta)
        self.request()

    def action_per_step(self) -> None:
        self.per_step = not self.per_step
        self._draw_curves_and_table()

    def action_log(self) -> None:
        from vaetui.ui.widgets.chart import Chart

        self.query_one("#cmp-chart", Chart).action_toggle_log()
