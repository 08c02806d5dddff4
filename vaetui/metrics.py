"""Numbers that say how good a model is (more come with `vaetui eval`)."""

from __future__ import annotations

import math

import torch

PSNR_CAP = 100.0  # identical images: infinite PSNR, reported as this


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between images in [0, 1] (or uint8), over the whole batch."""
    a = a.float() / 255.0 if a.dtype == torch.uint8 else a.float()
    b = b.float() / 255.0 if b.dtype == torch.uint8 else b.float()
    mse = float((a - b).pow(2).mean())
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(1.0 / mse))
