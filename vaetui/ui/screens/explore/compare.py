"""Compare: two or more runs, their curves overlaid, their numbers side by side, their reconstructions."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header
from textual.worker import get_current_worker

from vaetui.runs.smoothing import SMOOTH_STEPS, X_AXES, X_LABELS, next_of
from vaetui.ui.screens.explore.base import ExploreScreen
from vaetui.ui.widgets.chart import Chart
from vaetui.ui.widgets.picture import picture_class
from vaetui.ui.widgets.text import Quiet
from vaetui.ui.widgets.keybar import KeyBar

COLOURS = ("cyan", "magenta", "yellow", "green", "red", "blue")
EVAL_PROTOCOL = {"split": "test"}  # the numbers compared: each run's newest eval on the test split


def quality_cells(r: dict) -> str:
    """MIG/DCI/SAP and the sample-quality numbers of an eval, when it has them."""
    out = ""
    if "disentanglement" in r:
        d = r["disentanglement"]
        out += (f"  MIG {d['mig']:.2f} DCI {d['dci_disentanglement']:.2f}/{d['dci_completeness']:.2f}/"
                f"{d['dci_informativeness']:.2f} SAP {d['sap']:.2f}{'*' if d['kind'] == 'attributes' else ''}")
    if "samples" in r:
        a = r["samples"]["attr"]
        out += f"  FD-attr {a['fd']:.2f} P/R {a['precision']:.2f}/{a['recall']:.2f}"
    return out


def curves_and_numbers(store, names: list[str], per_step: bool, smooth: float = 0.0,
                       x: str = "step") -> tuple[list, list, list[str]]:
    """The chart's lines (per step: smoothed over the raw points drawn dim), the rate–distortion paths and the
    table's rows for these runs, from their histories and newest evals."""
    from vaetui.pictures.plots import rd_point
    from vaetui.runs.smoothing import smooth as smoothed, x_values

    lines, rd, cells = [], [], []
    for k, name in enumerate(names):
        run = store.open(name)
        h = run.history(steps="all" if per_step or x == "time" else "none")
        colour = COLOURS[k % len(COLOURS)]
        point = rd_point(name, h)
        if point is not None:
            rd.append((name, point.path_kl, point.path_recon, colour))

        def at(steps):
            return x_values(steps, x, h.steps_per_epoch, h.wall.points())

        if per_step:
            steps, ys = h.series["loss"].points()
            if smooth:
                lines.append((f"{name} raw", at(steps), ys, f"dim {colour}"))
                lines.append((f"{name} EMA {smooth:g}", at(steps), smoothed(steps, ys, smooth, h.breaks), colour))
            else:
                lines.append((f"{name} train/step", at(steps), ys, colour))
        else:
            steps = at([e.step for e in h.epochs])
            lines.append((f"{name} valid", steps, [e.valid_loss for e in h.epochs], colour))
            lines.append((f"{name} train", steps, [e.train_loss for e in h.epochs], f"dim {colour}"))
        info = run.info(store.summaries)
        evals = run.evals(**EVAL_PROTOCOL)
        extra = ""
        if evals:
            r, p = evals[0], evals[0]["protocol"]
            extra = (f"  PSNR {r['psnr']:.1f}  IWAE {r['per_image']['iwae_nll']:.1f}  "
                     f"active {'-' if r['active_units'] is None else r['active_units']}/{r['latent']}  [dim]({p['checkpoint']}, n{p['count']}, k{p['k']})[/]")
            extra += quality_cells(r)
        best = "-" if info.best_valid is None else f"{info.best_valid:.1f}"
        cells.append(f"[{colour}]■[/] [b]{name}[/]  latent {info.latent}  β {info.beta:g}  "
                     f"epochs {info.epochs_done}/{info.epochs}  best valid {best}{extra}")
    return lines, rd, cells


class CompareScreen(ExploreScreen):
    """Two or more runs: learning curves overlaid, numbers side by side, reconstructions of the same images."""

    name_ = "compare"
    BINDINGS = [Binding("left", "page(-1)", "page-"), Binding("right", "page(1)", "page+"),
                Binding("l", "log", "log y"), Binding("e", "per_step", "per epoch/step"),
                Binding("w", "smooth", "smoothing"), Binding("x", "x_axis", "x: step/epoch/time"),
                Binding("L", "lockstep", "lockstep")]

    def __init__(self, run_names: list[str]):
        super().__init__(run_names[0])
        self.run_names = run_names
        self.start = 0
        self.per_step = False
        self.smooth, self.x = 0.6, "step"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Quiet("", id="ex-title")
        with Horizontal(id="cmp-charts"):
            yield Chart(id="cmp-chart")
            yield Chart(id="cmp-rd", x_label="KL", title="rate–distortion (y: recon)")
        yield Quiet("", id="cmp-table")
        with Vertical(id="ex-body"):
            yield picture_class(self.app.image)(None, id="ex-picture")
        yield Quiet("", id="ex-info")
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = "compare · " + " vs ".join(self.run_names)
        self._curves()

    def title_text(self) -> str:
        what = "training loss per step" if self.per_step else "train (dim) and validation loss per epoch"
        return f"[b]{what}, rate–distortion path, numbers, test reconstructions[/]  [dim]e per epoch/step · " \
               "w smoothing · x step/epoch/time · rows: originals, " + \
            ", ".join(self.run_names) + "[/]"

    @work(thread=True, exclusive=True, group="compare-curves", exit_on_error=False)
    def _curves(self) -> None:
        lines, rd, cells = curves_and_numbers(self.app.store, self.run_names, self.per_step, self.smooth, self.x)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_curves, lines, rd, cells)

    def _show_curves(self, lines, rd, cells) -> None:
        chart = self.query_one("#cmp-chart", Chart)
        chart.x_label = X_LABELS[self.x]
        chart.set_series(lines)
        self.query_one("#cmp-rd", Chart).set_series(rd)
        self.query_one("#cmp-table", Quiet).set("\n".join(cells))

    def compute(self, model, config):
        from vaetui.pictures.figures import reconstructions

        others = []
        for name in self.run_names[1:]:
            loaded = self.app.models.get(self.app.store, name, None)
            others.append((loaded.model, loaded.config))
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
        self._curves()

    def action_smooth(self) -> None:
        self.smooth = next_of(SMOOTH_STEPS, self.smooth)
        self._curves()

    def action_x_axis(self) -> None:
        self.x = next_of(X_AXES, self.x)
        self._curves()

    def action_lockstep(self) -> None:
        """The same runs in lockstep: the same images and z, one point of training for all (two to four)."""
        from vaetui.ui.screens.explore.lockstep import LockstepScreen

        if len(self.run_names) > 4:
            self.notify("lockstep compares two to four runs: mark fewer", severity="warning")
            return
        self.app.push_screen(LockstepScreen(self.run_names))

    def action_log(self) -> None:
        self.query_one("#cmp-chart", Chart).action_toggle_log()
