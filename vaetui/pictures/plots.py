"""Figures written to files with matplotlib: learning curves, and rate against distortion.

The rate–distortion picture is the β-VAE one: each run (or study trial) a point at its
last validation epoch, KL (rate, nats per image) across and reconstruction NLL
(distortion) up, with the path its epochs took to get there. `rd_points` reads them from
the runs' own histories, so `vaetui plot --rd`, `vaetui sweep show --out` and the
compare screen's braille scatter show the same numbers.
"""

from __future__ import annotations

from vaetui.format import is_finite
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class RDPoint:
    """One run in the rate–distortion plane: its last validation epoch, and the path of every epoch."""

    label: str
    kl: float
    recon: float
    path_kl: tuple[float, ...] = ()
    path_recon: tuple[float, ...] = ()
    group: str = ""  # a study trial's state, for colouring
    extra: dict = field(default_factory=dict)


def rd_point(label: str, history, group: str = "") -> RDPoint | None:
    """A run's point from its folded history (vaetui.runs.history.History); None before its first validation."""
    epochs = [e for e in history.epochs if is_finite(e.valid_kl) and is_finite(e.valid_recon)]
    if not epochs:
        return None
    last = epochs[-1]
    return RDPoint(label, last.valid_kl, last.valid_recon, tuple(e.valid_kl for e in epochs),
                   tuple(e.valid_recon for e in epochs), group)


def _figure(size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=size, dpi=110)


def _save(plt, fig, out: Path) -> Path:
    from vaetui.disk.files import atomic_path

    out = Path(out)
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=out.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    return out


GROUP_COLOURS = {"complete": "tab:blue", "pruned": "tab:orange", "running": "tab:green", "fail": "tab:red"}


def rate_distortion(points: Sequence[RDPoint], title: str, out: Path) -> Path:
    """KL against reconstruction, one labelled point per run with the faint path of its epochs."""
    plt, fig, ax = _figure((7, 5))
    for p in points:
        colour = GROUP_COLOURS.get(p.group) if p.group else None
        if len(p.path_kl) > 1:
            (line,) = ax.plot(p.path_kl, p.path_recon, "-", lw=1, alpha=0.35, color=colour)
            colour = line.get_color()
        dot = ax.scatter([p.kl], [p.recon], color=colour, zorder=3)
        ax.annotate(p.label, (p.kl, p.recon), fontsize=7, xytext=(4, 4), textcoords="offset points",
                    color=dot.get_facecolor()[0])
    ax.set_xlabel("rate: KL per image (nats)")
    ax.set_ylabel("distortion: reconstruction NLL per image (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(plt, fig, out)


def learning_curves(histories: Sequence[tuple[str, object]], out: Path, steps: bool = False,
                    log_y: bool = False, smooth: float = 0.0, x: str = "step") -> Path:
    """The seed's figure: train and validation loss against iterations, several runs in one figure; the per-step
    loss smoothed (a debiased EMA restarted at resumes and roll-backs) over its raw points drawn faint; x by
    step, epoch or wall time."""
    from vaetui.runs.smoothing import X_LABELS, smooth as smoothed, x_values

    plt, fig, ax = _figure((8, 5))
    for name, h in histories:
        line = None

        def at(points):
            return x_values(points, x, h.steps_per_epoch, h.wall.points())

        if steps and len(h.series["loss"]):
            xs, ys = h.series["loss"].points()
            if smooth:
                (line,) = ax.plot(at(xs), ys, alpha=0.2, lw=0.8)
                ax.plot(at(xs), smoothed(xs, ys, smooth, h.breaks), lw=1.2, color=line.get_color(),
                        label=f"{name} train (per step, EMA {smooth:g})")
            else:
                (line,) = ax.plot(at(xs), ys, alpha=0.35, lw=1, label=f"{name} train (per step)")
        if h.epochs:
            ex = at([e.step for e in h.epochs])
            (line,) = ax.plot(ex, [e.train_loss for e in h.epochs], "-o", ms=3,
                              color=line.get_color() if line else None, label=f"{name} train")
            ax.plot(ex, [e.valid_loss for e in h.epochs], "--s", ms=3, color=line.get_color(),
                    label=f"{name} validation")
    ax.set_xlabel("Iterations" if x == "step" else X_LABELS[x].capitalize())
    ax.set_ylabel("Loss per image (nats)")
    ax.set_title("Learning curves")
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, out)


def kl_heatmap(name: str, steps, matrix, marks, out: Path, floor: float = 0.0) -> Path:
    """KL per latent dimension over a run (the monitor's `k`, as a file): dimensions up, steps across, a log colour
    scale from 0.01 nats (below: collapsed) to 20, the warm-up's end and the KL cycles as dashed lines."""
    import numpy as np
    from matplotlib.colors import LogNorm

    plt, fig, ax = _figure((8, 4.5))
    data = np.clip(np.asarray(matrix, float).T, 1e-3, None)  # dims × columns
    edges = list(steps)
    left = edges[0] - (edges[1] - edges[0] if len(edges) > 1 else 1)
    image = ax.imshow(data, aspect="auto", origin="lower", cmap="viridis", norm=LogNorm(0.01, 20),
                      extent=(left, edges[-1], -0.5, data.shape[0] - 0.5), interpolation="nearest")
    for step, kind in marks:
        if left < step <= edges[-1]:
            ax.axvline(step, color="white" if kind == "w" else "orange", ls="--", lw=1,
                       label="warm-up ends" if kind == "w" else "KL cycle")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(), fontsize=7, loc="upper right")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("KL per image (nats, log)")
    if floor > 0:
        bar.ax.axhline(floor, color="magenta", lw=2)
    ax.set_xlabel("step")
    ax.set_ylabel("latent dimension")
    active = int((np.asarray(matrix[-1]) >= 0.01).sum())
    ax.set_title(f"{name}: KL per dimension ({active}/{data.shape[0]} active at the end)")
    return _save(plt, fig, out)
