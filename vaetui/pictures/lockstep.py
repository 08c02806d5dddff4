"""Lockstep: two to four runs on the same test images and the same z, at the same point of training, one row each.

`at` picks the point: a checkpoint every run has (`best`, `latest`, `epoch-N`: each run's model is loaded and
draws the same 8 test images, the same seeded z, the same interpolation endpoints), or `step-N`: each run's
stored training snapshot nearest to step N (the fixed validation images and fixed z every run draws while it
trains: originals, reconstructions, samples), no model loaded. `show` picks what: recon (originals over each run's
reconstructions), error (originals over each run's per-pixel |x − x̂| as a heat map), samples, interp (an
interpolation strip per run). A run's row is the picture its single-run twin (`vaetui reconstruct`, `sample`,
`interpolate`) draws for the same arguments, pixel for pixel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from vaetui.errors import VaeError
from vaetui.pictures import LOCKSTEP_SHOWS as SHOWS
from vaetui.pictures.figures import Figure
from vaetui.pictures.imaging import stack_rows

N_IMAGES = 8  # images (or frames) a row: the seed's reconstruct and sample rows
AT = re.compile(r"^(best|latest|epoch-\d+|step-\d+)$")
# The error heat map: 0 black, then purple, orange, yellow at the largest error a pixel can have (1 on [0, 1]).
HEAT = np.array([(0, 0, 0), (80, 18, 123), (182, 54, 121), (251, 136, 97), (252, 253, 191)], float)


@dataclass(frozen=True)
class Member:
    """One run of a lockstep comparison: its name and what it draws at the chosen point."""

    name: str
    model: object = None
    config: object = None
    snapshot: Image.Image | None = None  # at step-N: its nearest training snapshot
    snapshot_step: int | None = None


def check_at(at: str) -> str:
    if not AT.match(at):
        raise VaeError(f"--at {at}: use best, latest, epoch-N or step-N (e.g. epoch-3, step-2000)")
    return at


def same_data(configs: dict[str, object]) -> None:
    """Runs on different data or image sizes are not compared: one line says which differ."""
    seen = {}
    for name, cfg in configs.items():
        d = cfg.data
        seen.setdefault((d.source, str(d.root), tuple(d.size), d.geometry), []).append(name)
    if len(seen) > 1:
        parts = [f"{', '.join(names)}: {key[0]} {key[2][0]}x{key[2][1]}" for key, names in seen.items()]
        raise VaeError(f"cannot compare runs on different data or image sizes ({'; '.join(parts)}): compare runs of "
                       f"one dataset and size")


def heat(error: torch.Tensor) -> torch.Tensor:
    """(N, H, W) errors in [0, 1] -> (N, 3, H, W) uint8 colours (a perceptual ramp; the largest error is bright)."""
    t = error.clamp(0, 1).numpy() * (len(HEAT) - 1)
    i = np.minimum(t.astype(int), len(HEAT) - 2)
    f = (t - i)[..., None]
    rgb = HEAT[i] * (1 - f) + HEAT[i + 1] * f
    return torch.from_numpy(np.round(rgb).astype(np.uint8)).permute(0, 3, 1, 2)


def _rows_from_models(members: list[Member], show: str, seed: int, start: int) -> tuple[list, dict]:
    from vaetui.models import latent
    from vaetui.pictures.figures import _split, interpolation

    first = members[0]
    info: dict = {"losses": {}}
    if show in ("recon", "error"):
        data = _split(first.config, "test")
        if not 0 <= start < len(data):
            raise VaeError(f"--start {start} is out of range: the test split has {len(data)} images")
        idx = np.arange(start, min(start + N_IMAGES, len(data)))
        x = data.images(idx)
        rows = [x]
        for m in members:
            recon, losses = latent.reconstruct(m.model, x, m.config.model.likelihood)
            info["losses"][m.name] = losses.tolist()
            rows.append(recon if show == "recon" else heat((x.float() / 255 - recon).abs().mean(1)))
        info["indices"] = idx.tolist()
        return rows, info
    if show == "samples":
        return [latent.sample(m.model, N_IMAGES, seed) for m in members], info
    return [torch.stack([torch.from_numpy(np.array(f)).permute(2, 0, 1)
                         for f in interpolation(m.model, m.config, N_IMAGES, "lerp", seed, 1).frames])
            for m in members], info


def _rows_from_snapshots(members: list[Member], show: str) -> tuple[list, dict]:
    """Each snapshot's rows (originals, reconstructions, samples), cut from its PNG."""
    tiles = []
    for m in members:
        if m.snapshot is None:
            raise VaeError(f"run {m.name} has no training snapshot yet: train it a few steps first")
        img = np.asarray(m.snapshot.convert("RGB"))
        tiles.append(_cut(img))
    if show == "interp":
        raise VaeError("--show interp needs a model: use --at best, latest or epoch-N (snapshots hold no path)")
    shapes = {t[0][0].shape for t in tiles}
    if len(shapes) > 1:
        raise VaeError("the runs' snapshots differ in size: compare them at a checkpoint (--at best)")
    info = {"steps": {m.name: m.snapshot_step for m in members}}
    if show == "samples":
        return [t[2] for t in tiles], info
    rows = [tiles[0][0]]
    for t in tiles:
        rows.append(t[1] if show == "recon" else heat((t[0].float() - t[1].float()).abs().mean(1) / 255))
    return rows, info


def _cut(img: np.ndarray, padding: int = 2, kinds: int = 3) -> list[torch.Tensor]:
    """A snapshot PNG (stack_rows of originals, reconstructions, samples) back into its rows of tiles."""
    h = (img.shape[0] - padding) // kinds - padding
    cols = []
    x = padding
    while x < img.shape[1] - padding:  # tiles are square-ish: find each tile's width from the padding colour
        end = x
        while end < img.shape[1] and not (img[padding:padding + h, end] == img[0, 0]).all():
            end += 1
        if end == x:
            break
        cols.append((x, end))
        x = end + padding
    rows = []
    for k in range(kinds):
        y = padding + k * (h + padding)
        rows.append(torch.stack([torch.from_numpy(img[y:y + h, a:b].copy()).permute(2, 0, 1) for a, b in cols]))
    return rows


def lockstep(members: list[Member], show: str, at: str, seed: int = 0, start: int = 0) -> Figure:
    """The lockstep picture: one row a run (after the originals for recon and error)."""
    if show not in SHOWS:
        raise VaeError(f"--show {show}: use one of {', '.join(SHOWS)}")
    if at.startswith("step-"):
        rows, info = _rows_from_snapshots(members, show)
    else:
        rows, info = _rows_from_models(members, show, seed, start)
    info.update({"runs": [m.name for m in members], "show": show, "at": at, "seed": seed,
                 "originals": show in ("recon", "error")})
    return Figure(stack_rows(rows), info)


def nearest_snapshot(run, history, step: int) -> tuple[Image.Image | None, int | None]:
    """A run's stored snapshot nearest to `step` (its image and its step)."""
    snaps = history.snapshots
    if not snaps:
        return None, None
    at, rel = min(snaps, key=lambda s: (abs(s[0] - step), s[0]))
    try:
        with Image.open(run.path / rel) as im:
            return im.convert("RGB"), at
    except OSError:
        return None, at
