"""Tensors to pictures: grids, strips, PNG and GIF files. No terminal code."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from vaetui.errors import VaeError
from vaetui.disk.files import atomic_path
from vaetui.models.pixels import to_uint8


def grid(images: torch.Tensor, ncol: int, padding: int = 2, pad_value: int = 24) -> Image.Image:
    """(N, 3, H, W) images -> one PIL image with ncol columns, row-major."""
    images = to_uint8(images)
    n, c, h, w = images.shape
    ncol = max(1, min(ncol, n))
    nrow = (n + ncol - 1) // ncol
    out = torch.full((c, nrow * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        out[:, y : y + h, x : x + w] = images[i]
    return Image.fromarray(out.permute(1, 2, 0).numpy())


def stack_rows(rows: Sequence[torch.Tensor], padding: int = 2) -> Image.Image:
    """Rows of equal-size images (each (N, 3, H, W), same N) -> one grid, one row each."""
    return grid(torch.cat([to_uint8(r) for r in rows]), ncol=rows[0].shape[0], padding=padding)


def frame(image: torch.Tensor) -> Image.Image:
    """One (3, H, W) image -> PIL."""
    return Image.fromarray(to_uint8(image).permute(1, 2, 0).numpy())


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Write a PNG (or whatever the suffix names) atomically."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
        raise VaeError(f"cannot write {path}: use a .png, .jpg or .webp file name")
    with atomic_path(path) as tmp:
        image.save(tmp, format=Image.registered_extensions()[path.suffix.lower()])
    return path


def save_gif(frames: Sequence[Image.Image], path: str | Path, duration_ms: int = 120, bounce: bool = True) -> Path:
    """Write an animated GIF that loops (and plays back and forth when bounce)."""
    path = Path(path)
    frames = list(frames)
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return path


def save_any(images: Image.Image | Sequence[Image.Image], path: str | Path) -> Path:
    """One picture -> PNG; several -> GIF when the path ends in .gif."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        frames = [images] if isinstance(images, Image.Image) else list(images)
        return save_gif(frames, path)
    if not isinstance(images, Image.Image):
        raise VaeError(f"{path}: several frames need a .gif file name")
    return save_image(images, path)


def as_array(image: Image.Image) -> np.ndarray:
    """PIL -> uint8 array (H, W, 3)."""
    return np.asarray(image.convert("RGB"))
