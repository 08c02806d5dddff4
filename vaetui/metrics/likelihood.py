"""How well a model explains the data: ELBO terms, an importance-weighted bound on −log p(x), bits/dim, PSNR, SSIM,
active units, KL per latent dimension, (on synthetic faces) linear probes to the true factors, and disentanglement
(vaetui.metrics.disentangle): `evaluate`, the protocol `vaetui eval` runs."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from vaetui.models.pixels import to_float
from vaetui.models.losses import LN2, discretized_gaussian_nll, kl_per_dim, reconstruction_nll
from vaetui.models.latent import active_units

PSNR_CAP = 100.0  # identical images: infinite PSNR, reported as this


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between images in [0, 1] (or uint8), over the whole batch."""
    a, b = to_float(a, channels_last=False), to_float(b, channels_last=False)
    mse = float((a - b).pow(2).mean())
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(1.0 / mse))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean structural similarity (pytorch-msssim's SSIM, Gaussian window 11, σ 1.5) of images in [0, 1]."""
    from pytorch_msssim import ssim as _ssim

    win = 11 if min(a.shape[-2:]) >= 11 else (min(a.shape[-2:]) // 2) * 2 - 1
    return float(_ssim(a.float(), b.float(), data_range=1.0, size_average=True, win_size=win))


IWAE_CHUNK = 128  # images a decoder pass takes when the k samples of a batch go through together (64–128 were
# fastest on a 2-core AVX-512 host in bf16: 8.7–8.8 s for 256 images at k = 64, against 11.5 s at 2,048)


def iwae_nll(model, x: torch.Tensor, k: int, likelihood: str, generator: torch.Generator,
             mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """The k-sample importance-weighted estimate of −log p(x) (Burda et al.), per image.

    In expectation it bounds −log p(x) from above and is never looser than the −ELBO
    (k = 1 is the −ELBO); a finite sample of it is a random draw, so on a given set of
    images it is usually, not always, below the −ELBO estimated from other draws.

    The k samples of every image go through the decoder together, IWAE_CHUNK images a pass (not k passes of
    a batch): the encoder's (mu, logvar) of x, when the caller has them, are used as they are.
    """
    if mu is None:
        mu, logvar = model.encode(x)
    n, d = mu.shape
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((k, n, d), generator=generator, device=mu.device)  # sample j of image i: eps[j, i]
    z = (mu + std * eps).reshape(k * n, d)
    log_px_z = torch.empty(k * n, device=mu.device)
    for a in range(0, k * n, IWAE_CHUNK):
        b = min(a + IWAE_CHUNK, k * n)
        rows = torch.arange(a, b, device=mu.device) % n  # the image each sample belongs to
        log_px_z[a:b] = -reconstruction_nll(model.decode_logits(z[a:b]), x[rows], likelihood)
    log_pz = model.log_prior(z)  # the model's own prior (N(0, I), or vamp's mixture)
    log_qz = (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi) - 0.5 * logvar).sum(2).reshape(k * n)
    log_w = (log_px_z + log_pz - log_qz).reshape(k, n)
    return -(torch.logsumexp(log_w, 0) - math.log(k))


def linear_probe_r2(features: np.ndarray, targets: np.ndarray, ridge: float = 1.0) -> float:
    """Held-out R² of a ridge-regularised linear map features -> target (fit on the first half, scored on the second)."""
    n = len(features) // 2
    if n < 2:
        return float("nan")
    mean, std = features[:n].mean(0), features[:n].std(0) + 1e-8
    X = np.hstack([(features - mean) / std, np.ones((len(features), 1))])
    reg = ridge * np.eye(X.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    coef = np.linalg.solve(X[:n].T @ X[:n] + reg, X[:n].T @ targets[:n])
    pred = X[n:] @ coef
    resid = ((targets[n:] - pred) ** 2).sum()
    total = ((targets[n:] - targets[n:].mean()) ** 2).sum()
    return float(1 - resid / total) if total > 0 else float("nan")


def precision_context(precision: str, device: torch.device):
    """The forward passes' precision (vaetui.models.inference's): the metrics themselves are summed in fp32 (the
    logits are cast before the likelihood)."""
    from vaetui.models.inference import precision_context as context

    return context(precision, device)


@torch.inference_mode()
def evaluate(model, config, split, count: int = 1024, k: int = 64, seed: int = 0, batch_size: int = 64,
             progress: Callable[[int, int, str], None] | None = None, disentangle_n: int = 0,
             precision: str = "fp32") -> dict:
    """Every metric on the first `count` images of a split, with fixed noise: a comparable protocol. precision:
    the forward passes' (vaetui eval passes the run's, resolved on this machine)."""
    from vaetui.models.inference import for_inference

    # BatchNorm folded into the convolutions (a copy: the caller's model is left as it was), channels_last as
    # training runs it (the same values, faster passes)
    model = for_inference(model, precision)
    with precision_context(precision, next(model.parameters()).device):
        return _evaluate(model, config, split, count, k, seed, batch_size, progress, disentangle_n)


def _evaluate(model, config, split, count, k, seed, batch_size, progress, disentangle_n) -> dict:
    model.eval()
    device = next(model.parameters()).device
    count = min(count, len(split))
    likelihood = config.model.likelihood
    gen = torch.Generator(device=device).manual_seed(seed)
    dims = 3 * config.data.size[0] * config.data.size[1]
    sums = {"recon": 0.0, "kl": 0.0, "iwae": 0.0, "se": 0.0, "ssim": 0.0, "discrete": 0.0}
    kl_dims = torch.zeros(model.latent, dtype=torch.float64)  # the model's code (a hierarchy's levels side by side)
    mus = []
    codes = getattr(model, "latent_kind", "gaussian") == "codes"  # a point posterior on a discrete code (VQ-VAE)
    for start in range(0, count, batch_size):
        idx = np.arange(start, min(start + batch_size, count))
        x = to_float(split.images(idx), device, channels_last=False)
        mu, logvar = model.encode(x)
        mu = mu.float()  # codes and their statistics in fp32, whatever precision the network ran in
        logvar = logvar.float() if logvar is not None else None
        z = mu if codes else mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, device=device)
        logits_z = model.decode_logits(z)
        recon_i = reconstruction_nll(logits_z, x, likelihood)
        sums["recon"] += float(recon_i.sum())
        if likelihood == "gaussian":
            sums["discrete"] += float(discretized_gaussian_nll(logits_z, x).sum())
        kl_i = model.kl(mu, logvar, z)  # to the model's own prior (VQ-VAE: −log p(codes))
        sums["kl"] += float(kl_i.sum())
        if codes:  # every importance sample is the one point: the IWAE bound is the ELBO
            sums["iwae"] += float((recon_i + kl_i).sum())
        else:
            kl_dims += kl_per_dim(mu, logvar).sum(0).double().cpu()  # to N(0, I), per dimension: which units carry
            sums["iwae"] += float(iwae_nll(model, x, k, likelihood, gen, mu, logvar).sum())
        recon = model.decode(mu)
        sums["se"] += float((recon - x).pow(2).mean(dim=(1, 2, 3)).sum())
        with torch.autocast(device.type, enabled=False):  # SSIM's variances cancel: never in bf16
            sums["ssim"] += ssim(recon.float(), x) * len(idx)
        mus.append(mu.double().cpu())
        if progress:
            progress(min(start + batch_size, count), count, "evaluating")
    mu_all = torch.cat(mus)
    variances = mu_all.var(0, unbiased=True) if count > 1 else torch.zeros(model.latent)
    neg_elbo = (sums["recon"] + sums["kl"]) / count
    iwae = sums["iwae"] / count
    mse = sums["se"] / count
    out = {
        "per_image": {"neg_elbo": neg_elbo, "recon": sums["recon"] / count, "kl": sums["kl"] / count, "iwae_nll": iwae},
        "per_dim": {"neg_elbo_nats": neg_elbo / dims, "neg_elbo_bits": neg_elbo / dims / LN2,
                    "iwae_nats": iwae / dims, "iwae_bits": iwae / dims / LN2,
                    **({"neg_elbo_discrete_bits": (sums["discrete"] + sums["kl"]) / count / dims / LN2}
                       if likelihood == "gaussian" else {})},
        "psnr": PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(1 / mse)),
        "ssim": sums["ssim"] / count,
        "active_units": active_units(variances),
        "latent": model.latent,
        "mu_variance": variances.tolist(),
        "kl_per_dim": (kl_dims / count).tolist(),
    }
    if codes:  # units, per-dimension KL, probes and disentanglement are measures of a continuous code
        out.update(active_units=None, mu_variance=[], kl_per_dim=[], latent_kind="codes")
        return out
    if hasattr(split, "factors"):  # synthetic faces: how linearly the code holds each true factor
        factors = split.factors(np.arange(count))
        feats = mu_all.numpy()
        out["probe_r2"] = {name: linear_probe_r2(feats, np.asarray(v, dtype=np.float64)) for name, v in factors.items()}
    if disentangle_n:
        from vaetui.metrics.disentangle import disentanglement

        scored = disentanglement(model, split, disentangle_n, batch_size, progress, first=mu_all)
        if scored is not None:
            out["disentanglement"] = scored
    return out
