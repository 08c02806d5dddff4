"""What the trainer reports about the model as it trains: the validation objective and preview pictures.

Both run in eval mode on fixed inputs (the first validation images, a fixed z, fixed
noise), so numbers and pictures from different steps and runs compare like for like.
"""

from __future__ import annotations

import math
from typing import Callable, ContextManager

import numpy as np
import torch

from vaetui.pictures.imaging import save_image, stack_rows
from vaetui.models.pixels import to_float, to_uint8
from vaetui.models.latent import ACTIVE_THRESHOLD, active_units
from vaetui.models.losses import kl_per_dim, reconstruction_nll

SNAPSHOT_MAX_SIDE = 96  # snapshot tiles are downscaled to this: what a terminal can show, a few KB a PNG


COLLAPSED_KL = 0.01  # nats: a dimension whose mean KL is below this carries (almost) nothing


@torch.no_grad()
def validate(model, split, count: int, batch_size: int, beta: float, likelihood: str, seed: int, device,
             autocast: Callable[[], ContextManager]) -> dict:
    """Mean recon and KL per image on the first `count` images; 'loss' = recon + β·KL at the given (final) β.

    Also the mean KL per latent dimension and the active units (Var over images of μ_j > 0.01),
    what the posterior-collapse alert reads.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    codes = getattr(model, "latent_kind", "gaussian") == "codes"
    sums = torch.zeros(2, device=device)
    kl_dims = mu_sum = mu_sq = 0.0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, count, batch_size):
            x = to_float(split.images(np.arange(start, min(start + batch_size, count))), device)
            with autocast():
                out = model(x, gen)
            # the KL to the model's own prior (closed form for N(0, I); vamp's at the posterior's sample)
            sums += torch.stack([reconstruction_nll(out.logits, x, likelihood).sum(),
                                 model.kl(out.mu, out.logvar, out.z).sum()])
            if not codes:
                mu = out.mu.double()
                kl_dims = kl_dims + kl_per_dim(out.mu, out.logvar).double().sum(0)
                mu_sum, mu_sq = mu_sum + mu.sum(0), mu_sq + mu.pow(2).sum(0)
    finally:
        model.train(was_training)
    recon, kl = (v / count for v in sums.tolist())
    out = {"loss": recon + beta * kl, "recon": recon, "kl": kl, "count": count}
    if codes:  # a discrete code has no units to count (and no collapse of them to warn about)
        return {**out, "kl_per_dim": [], "active_units": None}
    var = (mu_sq - mu_sum.pow(2) / count) / max(count - 1, 1)
    return {**out, "kl_per_dim": (kl_dims / count).tolist(), "active_units": active_units(var)}


def collapse_message(v: dict, epoch: int, active_fraction: float = 0.1, collapsed_fraction: float = 0.9) -> str | None:
    """A posterior-collapse warning from validate()'s numbers, or None.

    Collapse: fewer than `active_fraction` of the units are active (at least one must be),
    or more than `collapsed_fraction` of the dimensions have mean KL below 0.01 nats.
    """
    kl_dims = v["kl_per_dim"]
    latent = len(kl_dims)
    if not latent:
        return None  # a discrete code (VQ-VAE): no units to collapse
    active = v["active_units"]
    collapsed = sum(k < COLLAPSED_KL for k in kl_dims)
    if active >= max(1, math.ceil(active_fraction * latent)) and collapsed <= collapsed_fraction * latent:
        return None
    return (f"posterior collapse at epoch {epoch}: {active}/{latent} units active (Var μ > {ACTIVE_THRESHOLD}), "
            f"{collapsed}/{latent} dims with KL < {COLLAPSED_KL} nats (total KL {v['kl']:.2f}): lower β, "
            f"or set --free-bits 0.1 or --kl-cycles 4")


@torch.no_grad()
def preview(model, images: torch.Tensor, seed: int, device,
            autocast: Callable[[], ContextManager]) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstructions (from μ) of the preview images and samples of prior codes drawn with a fixed seed (the same
    codes at every step for a fixed prior), float on the CPU."""
    was_training = model.training
    model.eval()
    try:
        with autocast():
            mu, _ = model.encode(to_float(images, device))
            recon = model.decode(mu)
            samples = model.decode(model.prior_sample(len(images), torch.Generator().manual_seed(seed)))
    finally:
        model.train(was_training)
    return recon.float().cpu(), samples.float().cpu()


def write_snapshot(run, step: int, originals, recon, samples) -> str:
    """snapshots/step-N.png: originals over reconstructions over samples; returns its path within the run."""
    rows = [to_uint8(r) for r in (originals, recon, samples)]
    h, w = rows[0].shape[-2:]
    scale = min(1.0, SNAPSHOT_MAX_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        rows = [torch.nn.functional.interpolate(r.float(), size=size, mode="area").round().to(torch.uint8) for r in rows]
    path = run.snapshots / f"step-{step:08d}.png"
    save_image(stack_rows(rows), path)
    return str(path.relative_to(run.path))
