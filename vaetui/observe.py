"""What the trainer reports about the model as it trains: the validation objective and preview pictures.

Both run in eval mode on fixed inputs (the first validation images, a fixed z, fixed
noise), so numbers and pictures from different steps and runs compare like for like.
"""

from __future__ import annotations

from typing import Callable, ContextManager

import numpy as np
import torch

from vaetui.imaging import save_image, stack_rows, to_float, to_uint8
from vaetui.losses import vae_loss

SNAPSHOT_MAX_SIDE = 96  # snapshot tiles are downscaled to this: what a terminal can show, a few KB a PNG


@torch.no_grad()
def validate(model, split, count: int, batch_size: int, beta: float, likelihood: str, seed: int, device,
             autocast: Callable[[], ContextManager]) -> dict[str, float]:
    """Mean recon and KL per image on the first `count` images; 'loss' = recon + β·KL at the given (final) β."""
    gen = torch.Generator(device=device).manual_seed(seed)
    sums = torch.zeros(2, device=device)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, count, batch_size):
            x = to_float(split.images(np.arange(start, min(start + batch_size, count))), device)
            with autocast():
                out = model(x, gen)
            t = vae_loss(out.logits, x, out.mu, out.logvar, beta, likelihood)
            sums += torch.stack([t.recon_sum, t.kl_sum])
    finally:
        model.train(was_training)
    recon, kl = (v / count for v in sums.tolist())
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "count": count}


@torch.no_grad()
def preview(model, images: torch.Tensor, fixed_z: torch.Tensor, device,
            autocast: Callable[[], ContextManager]) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstructions (from μ) of the preview images and samples from the fixed z, float on the CPU."""
    was_training = model.training
    model.eval()
    try:
        with autocast():
            mu, _ = model.encode(to_float(images, device))
            recon = model.decode(mu)
            samples = model.decode(fixed_z.to(device))
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
