"""What each explore screen and its headless twin draw: the same PIL pictures for the same arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from vaetui import explore
from vaetui.data import open_split
from vaetui.errors import VaeError
from vaetui.imaging import frame, grid, stack_rows


@dataclass
class Figure:
    """A picture plus the numbers shown beside it."""

    image: Image.Image
    info: dict = field(default_factory=dict)
    frames: list[Image.Image] = field(default_factory=list)


def _split(config, split: str):
    return open_split(config.data, split)


def reconstructions(model, config, split: str = "test", n: int = 8, start: int = 0, compare=None) -> Figure:
    """Originals over reconstructions for images start..start+n of a split, with each image's loss.

    compare=(model, config) of a second run adds its reconstructions of the same images
    as a third row (the seed's latent 3 vs latent 100); its image size must match.
    """
    data = _split(config, split)
    if not 0 <= start < len(data):
        raise VaeError(f"--start {start} is out of range: the {split} split has {len(data)} images")
    idx = np.arange(start, min(start + n, len(data)))
    x = data.images(idx)
    recon, losses = explore.reconstruct(model, x, config.model.likelihood)
    rows, info = [x, recon], {"indices": idx.tolist(), "losses": losses.tolist(), "split": split}
    if compare is not None:
        other, other_cfg = compare
        if other_cfg.data.size != config.data.size:
            raise VaeError(f"cannot compare: image sizes differ ({other_cfg.data.size} vs {config.data.size})")
        recon2, losses2 = explore.reconstruct(other, x, other_cfg.model.likelihood)
        rows.append(recon2)
        info["compare_losses"] = losses2.tolist()
    return Figure(stack_rows(rows), info)


def data_grid(data_config, seed: int = 0, n: int = 32, cols: int = 8, split: str = "train") -> Figure:
    """The seed's show(): n random images of a split (sorted indices), in a grid."""
    data = open_split(data_config, split)
    n = min(n, len(data))
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    names = list(getattr(data, "attribute_names", []))
    attrs = data.attributes(idx).numpy() if names else np.zeros((n, 0), bool)
    return Figure(grid(data.images(idx), ncol=cols), {"indices": idx.tolist(), "cols": cols, "attribute_names": names,
                                                      "attributes": attrs.tolist(), "skipped": getattr(data, "skipped", [])})


def data_blend(data_config, i: int, j: int, alphas) -> Figure:
    """The seed's image-space blend α·X1 + (1−α)·X2 of training images i and j, one frame per α."""
    data = open_split(data_config, "train")
    for k in (i, j):
        if not 0 <= k < len(data):
            raise VaeError(f"image {k} is out of range: the training split has {len(data)} images")
    x = data.images([i, j])
    strip = explore.blend(x[0], x[1], alphas)
    return Figure(grid(strip, ncol=len(alphas)), {"alphas": list(alphas), "indices": [i, j]})


def samples(model, n: int = 32, seed: int = 0, temperature: float = 1.0, cols: int = 8) -> Figure:
    """A grid of faces decoded from z ~ N(0, T² I) (the seed's 32)."""
    return Figure(grid(explore.sample(model, n, seed, temperature), ncol=cols), {"seed": seed, "temperature": temperature})


def interpolation(model, config, steps: int = 11, mode: str = "lerp", seed: int = 0, pairs: int = 1,
                  endpoints: tuple[int, int] | None = None, extrapolate: float = 0.0, split: str = "test") -> Figure:
    """Rows of frames along latent paths (one row a pair); frames of the first row for GIFs and the screen."""
    ts = explore.path_ts(steps, extrapolate)
    if endpoints is not None:
        data = _split(config, split)
        for k in endpoints:
            if not 0 <= k < len(data):
                raise VaeError(f"image {k} is out of range: the {split} split has {len(data)} images")
        pairs_z = [explore.image_endpoints(model, data, *endpoints)]
    else:
        pairs_z = explore.random_endpoints(config.model.latent, seed, pairs)
    rows, norms = [], []
    for z1, z2 in pairs_z:
        images, ns = explore.interpolate(model, z1, z2, ts, mode)
        rows.append(images)
        norms.append(ns)
    return Figure(stack_rows(rows), {"t": ts, "norms": norms, "mode": mode},
                  frames=[frame(img) for img in rows[0]])


def model_for(run, checkpoint: str = "best", device: str = "cpu"):
    """Load a run's model for exploring; raise a clear error when the run has no checkpoint."""
    torch.set_grad_enabled(False)
    try:
        return explore.load_model(run, checkpoint, device)
    finally:
        torch.set_grad_enabled(True)
