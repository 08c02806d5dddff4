"""Generate: the seed's 32 faces from z ~ N(0, T²I); seed and temperature stepped from the keyboard."""

from __future__ import annotations

from textual.binding import Binding

from vaetui.ui.screens.explore.base import ExploreScreen


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
