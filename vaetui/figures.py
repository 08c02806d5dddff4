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


def reconstructions(model, config, split: str = "test", n: int = 8, start: int = 0) -> Figure:
    """Originals over reconstructions for images start..start+n of a split, with each image's loss."""
    data = _split(config, split)
    if not 0 <= start < len(data):
        raise VaeError(f"--start {start} is out of range: the {split} split has {len(data)} images")
    idx = np.arange(start, min(start + n, len(data)))
    x = data.images(idx)
    recon, losses = explore.reconstruct(model, x, config.model.likelihood)
    return Figure(stack_rows([x, recon]), {"indices": idx.tolist(), "losses": losses.tolist(), "split": split})


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
