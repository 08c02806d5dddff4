"""Latent: dimensions ranked by KL, traversals, attribute vectors, a scatter of μ."""

from __future__ import annotations

from textual.binding import Binding

from vaetui.ui.screens.explore.base import ExploreScreen


def disentanglement_text(scored: dict | None, run: str) -> str:
    """The newest eval's MIG, DCI and SAP, with what it was measured on; or how to get them."""
    from vaetui.metrics.disentangle import summary_line

    if not scored:
        return f"[dim]disentanglement: not measured yet (vaetui eval {run})[/]"
    p, d = scored["protocol"], scored["disentanglement"]
    return f"{summary_line(d)}  [dim]({p['checkpoint']}, {d['count']} {p['split']} images)[/]"


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
        self.scored: dict | None = None  # the newest eval with disentanglement ({} when there is none)

    def title_text(self) -> str:
        return "[b]latent space[/]  [dim]↑/↓ dimension · [ ] image · a attribute · - + amount · p scatter[/]"

    def layout_for(self, cols: int, rows: int) -> int:
        """As many traversal rows (the selected dimension, then the next by KL) as fill the area with the strip below."""
        from vaetui.pictures.layout import fitted_scale

        if cols <= 0 or rows <= 0:
            return 1
        h, w = self.image_size
        width = 7 * (w + 2) + 2
        best = 1
        for k in range(1, 6):
            if fitted_scale(width, (k + 1) * (h + 2) + 6, cols, rows) >= fitted_scale(width, 2 * (h + 2) + 6, cols, rows):
                best = k
        return best

    def compute(self, model, config):
        from vaetui.pictures import latent_space

        if self.encoded is None:
            self.encoded = latent_space.encode_latents(model, config)
        fig = latent_space.latent_view(model, self.encoded, self.rank, self.image, self.fitted or 1, self.attr_index,
                                       self.amount, self.show_scatter)
        self.rank, self.image = fig.info["rank"], fig.info["image"]
        self.attribute, self.attr_error = fig.info["attribute"], fig.info["attr_error"]
        if self.scored is None:  # read the stored evals once per screen, not on every key
            self.scored = self.app.store.open(self.run_name).newest_eval("disentanglement") or {}
        fig.info["scored"] = self.scored
        return fig

    def headless(self) -> list[str]:
        return ["latent", self.run_name, *self.checkpoint_flag(), "--rank", str(self.rank), "--image",
                str(self.image), "--dims", str(self.fitted or 1), "--attribute", str(self.attr_index),
                "--amount", f"{self.amount:g}", *(["--scatter"] if self.show_scatter else []), "--out", "latent.png"]

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
                f"{'active' if row['active'] else 'inactive'} · image {self.image} · {lower} {self.attr_error}"
                f"[dim] · headless: vaetui {' '.join(self.headless())}[/]\n"
                f"[dim]active {active}/{len(ranking)} · by KL: {top}[/]\n{disentanglement_text(self.figure.info['scored'], self.run_name)}")

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
