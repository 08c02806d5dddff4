"""Looking at data and models: blends, reconstructions, samples, interpolations. Tensors in, tensors out."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from vaetui.errors import ConfigError
from vaetui.models.pixels import to_float


ACTIVE_THRESHOLD = 0.01  # Burda et al.: a unit is active when Cov_x(E[z_j|x]) > 0.01


def active_units(variances: torch.Tensor) -> int:
    """How many latent units are active: the variance over the data of their posterior mean above the threshold."""
    return int((variances > ACTIVE_THRESHOLD).sum())


def alpha_range(start: float = 0.0, stop: float = 1.0, step: float = 0.2) -> list[float]:
    """The multiples of step in [start, stop] plus both ends, so 0 and 1 are always hit when inside."""
    if step <= 0 or stop < start:
        raise ConfigError("alpha", f"need a step > 0 and start <= stop, got {start:g}..{stop:g} by {step:g}")
    first, last = math.ceil(start / step - 1e-9), math.floor(stop / step + 1e-9)
    values = {round(k * step, 10) for k in range(first, last + 1)} | {round(start, 10), round(stop, 10)}
    return sorted(values)


def blend(x1: torch.Tensor, x2: torch.Tensor, alphas: Sequence[float]) -> torch.Tensor:
    """Image-space interpolation α·x1 + (1−α)·x2 per α (the seed's), clipped to valid pixels; (len(alphas), 3, H, W)."""
    x1, x2 = to_float(x1, channels_last=False), to_float(x2, channels_last=False)
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


@torch.no_grad()
def reconstruct(model, images: torch.Tensor, likelihood: str = "bernoulli") -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstructions from the posterior mean, and each image's -ELBO-free reconstruction loss (nats)."""
    from vaetui.models.losses import reconstruction_nll

    device = next(model.parameters()).device
    x = to_float(images, device, channels_last=False)
    mu, _ = model.encode(x)
    logits = model.decode_logits(mu)
    return torch.sigmoid(logits.float()).cpu(), reconstruction_nll(logits, x, likelihood).cpu()


@torch.no_grad()
def sample(model, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
    """n faces decoded from z ~ N(0, T² I) with a seeded generator (the same on every machine)."""
    return model.sample(n, generator=torch.Generator().manual_seed(seed), temperature=temperature).cpu()


def path_ts(steps: int = 11, extrapolate: float = 0.0) -> list[float]:
    """t values along a path: steps points on [0, 1], extended by `extrapolate` past both ends at the same spacing."""
    if steps < 2:
        raise ConfigError("steps", f"need at least 2 steps, got {steps}")
    dt = 1.0 / (steps - 1)
    extra = int(round(extrapolate / dt)) if extrapolate > 0 else 0
    return [round(k * dt, 10) for k in range(-extra, steps + extra)]


@torch.no_grad()
def random_endpoints(model, seed: int, pairs: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The seed's endpoints: pairs of codes from the model's prior (z ~ N(0, I) for the seed's), one code at a time
    from a seeded generator, on the CPU."""
    g = torch.Generator().manual_seed(seed)
    code = lambda: model.prior_sample(1, g)[0].float().cpu()  # noqa: E731
    return [(code(), code()) for _ in range(pairs)]


@torch.no_grad()
def image_endpoints(model, split, i: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    """μ of two dataset images: interpolate between real faces."""
    device = next(model.parameters()).device
    mu, _ = model.encode(to_float(split.images([i, j]), device, channels_last=False))
    return mu[0].cpu(), mu[1].cpu()


@torch.no_grad()
def interpolate(model, z1: torch.Tensor, z2: torch.Tensor, ts, mode: str = "lerp") -> tuple[torch.Tensor, list[float]]:
    """Decoded frames along t·z1 + (1−t)·z2 (or the slerp), and ‖z‖ at each frame."""
    if mode not in ("lerp", "slerp"):
        raise ConfigError("mode", f"must be lerp or slerp, got {mode!r}")
    path = (lerp if mode == "lerp" else slerp)(z1, z2, ts)
    device = next(model.parameters()).device
    return model.decode(path.to(device)).cpu(), path.norm(dim=1).tolist()
