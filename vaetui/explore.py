"""Looking at data and models: blends, reconstructions, samples, interpolations. Tensors in, tensors out."""

from __future__ import annotations

import math
from typing import Sequence

import torch


def alpha_range(start: float = 0.0, stop: float = 1.0, step: float = 0.2) -> list[float]:
    """The multiples of step in [start, stop] plus both ends, so 0 and 1 are always hit when inside."""
    if step <= 0 or stop < start:
        raise ValueError("need step > 0 and start <= stop")
    first, last = math.ceil(start / step - 1e-9), math.floor(stop / step + 1e-9)
    values = {round(k * step, 10) for k in range(first, last + 1)} | {round(start, 10), round(stop, 10)}
    return sorted(values)


def blend(x1: torch.Tensor, x2: torch.Tensor, alphas: Sequence[float]) -> torch.Tensor:
    """Image-space interpolation α·x1 + (1−α)·x2 per α (the seed's), clipped to valid pixels; (len(alphas), 3, H, W)."""
    x1, x2 = x1.float(), x2.float()
    if x1.max() > 1.0 or x2.max() > 1.0:  # uint8 input
        x1, x2 = x1 / 255.0, x2 / 255.0
    a = torch.tensor(list(alphas), dtype=torch.float32)[:, None, None, None]
    return (a * x1[None] + (1 - a) * x2[None]).clamp(0.0, 1.0)


def lerp(z1: torch.Tensor, z2: torch.Tensor, ts: Sequence[float]) -> torch.Tensor:
    """Linear path t·z1 + (1−t)·z2 for each t (t outside [0, 1] extrapolates); (len(ts), D)."""
    t = torch.tensor(list(ts), dtype=z1.dtype, device=z1.device)[:, None]
    return t * z1[None] + (1 - t) * z2[None]


def slerp(z1: torch.Tensor, z2: torch.Tensor, ts: Sequence[float]) -> torch.Tensor:
    """Spherical path with the same convention as lerp (t=1 gives z1); falls back to lerp for parallel codes."""
    a, b = z1.double(), z2.double()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega) < 1e-6:
        return lerp(z1, z2, ts)
    t = torch.tensor(list(ts), dtype=torch.float64, device=z1.device)[:, None]
    so = torch.sin(omega)
    out = torch.sin(t * omega) / so * a[None] + torch.sin((1 - t) * omega) / so * b[None]
    return out.to(z1.dtype)
