"""Generate: the seed's 32 faces from z ~ N(0, T²I) or the ex-post GMM; seed and temperature stepped from the keyboard."""

from __future__ import annotations

from textual.binding import Binding

from vaetui.ui.screens.explore.base import ExploreScreen


def quality_text(scored: dict | None, run: str) -> str:
    """The newest eval's sample quality (FD-attr, KID, precision/recall), with what it measured; or how to get it."""
    from vaetui.metrics.fidelity import samples_summary

    if not scored:
        return f"[dim]sample quality: not measured yet (vaetui eval {run} --samples)[/]"
    p, s = scored["protocol"], scored["samples"]
    from vaetui.config.settings import SAMPLER_SHORT

    sampler = p.get("sampler", "prior")
    source = "samples" if sampler == "prior" else f"{SAMPLER_SHORT[sampler]} samples"
    return f"{samples_summary(s)}  [dim]({p['checkpoint']}, {s['attr']['count']} {source} vs {p['split']} images)[/]"


class GenerateScreen(ExploreScreen):
    """Faces from the prior, the ex-post GMM or the VampPrior (m cycles them): space draws new ones, [ ] step the seed, - + the temperature."""

    name_ = "generate"
    BINDINGS = [
        Binding("space", "reroll", "new faces"),
        Binding("left", "move(-1)", "←", show=False), Binding("right", "move(1)", "→", show=False),
        Binding("up", "move_rows(-1)", "↑", show=False), Binding("down", "move_rows(1)", "↓", show=False),
        Binding("left_square_bracket", "seed(-1)", "seed-"), Binding("right_square_bracket", "seed(1)", "seed+"),
        Binding("minus", "temperature(-0.1)", "T-"), Binding("plus,equals_sign", "temperature(0.1)", "T+"),
        Binding("m", "sampler", "sampler"),
    ]

    def __init__(self, run_name: str, checkpoint: str | None = None, seed: int = 0, temperature: float = 1.0, n: int = 32):
        super().__init__(run_name, checkpoint)
        self.seed, self.temperature, self.n = seed, temperature, n
        self.selected = 0
        self.scored: dict | None = None  # the newest eval with sample quality ({} when there is none)
        self.sampler = "prior"  # or "gmm", "vamp" (vaetui.models.samplers)
        self.mixtures: dict = {}  # each sampler's mixture for the checkpoint shown, once asked for

    def title_text(self) -> str:
        from vaetui.config.settings import SAMPLER_NAMES

        return f"[b]{self.n} faces from {SAMPLER_NAMES[self.sampler]}[/]  seed {self.seed}  T {self.temperature:.1f}"

    def layout_for(self, cols: int, rows: int) -> int:
        from vaetui.pictures.layout import best_columns

        return best_columns(self.n, self.image_size, cols, rows, lo=4) if cols > 0 and rows > 0 else 8

    def compute(self, model, config):
        from vaetui.pictures.figures import samples

        if self.scored is None:  # read the stored evals once per screen, not on every key
            self.scored = self.app.store.open(self.run_name).newest_eval("samples") or {}
        if self.sampler not in self.mixtures:  # the GMM is fitted once (seconds), then read from the run
            from vaetui.pictures.latent_space import sampler_mixture

            loaded = self.app.models.get(self.app.store, self.run_name, self.checkpoint)
            self.mixtures[self.sampler] = sampler_mixture(loaded.run, model, config, loaded.path, self.sampler)
        return samples(model, self.n, self.seed, self.temperature, self.fitted or 8, self.mixtures[self.sampler],
                       self.sampler)

    def view(self, figure):
        from vaetui.pictures.figures import SELECTED, framed

        return framed(figure.image, self.n, self.fitted or 8, self.image_size, [(self.selected, SELECTED)])

    def zoom_view(self, figure):
        from vaetui.pictures.figures import zoom

        h, w = self.image_size
        return zoom(figure.image, self.selected, self.fitted or 8, w, h)

    def headless(self) -> list[str]:
        return ["sample", self.run_name, *self.checkpoint_flag(), "--seed", str(self.seed),
                "--temperature", f"{self.temperature:g}", "--n", str(self.n), "--cols", str(self.fitted or 8),
                *(["--sampler", self.sampler] if self.sampler != "prior" else []), "--out", "samples.png"]

    def info_text(self) -> str:
        return (f"[dim]face {self.selected + 1}/{self.n} · headless: vaetui {' '.join(self.headless())}[/]\n"
                + quality_text(self.scored, self.run_name))

    def action_move(self, delta: int) -> None:
        self.selected = max(0, min(self.n - 1, self.selected + delta))
        self.query_one("#ex-info").set(self.info_text())
        self.redraw()

    def action_move_rows(self, delta: int) -> None:
        self.action_move(delta * (self.fitted or 8))

    def default_filename(self) -> str:
        return f"samples-{self.run_name}-seed{self.seed}.png"

    def action_reroll(self) -> None:
        self.action_seed(1)

    def action_seed(self, delta: int) -> None:
        self.seed = max(0, self.seed + delta)
        self.request()

    def action_sampler(self) -> None:
        from vaetui.config.settings import SAMPLERS

        self.sampler = SAMPLERS[(SAMPLERS.index(self.sampler) + 1) % len(SAMPLERS)]
        self.request()

    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(3.0, max(0.1, self.temperature + delta)), 1)
        self.request()
