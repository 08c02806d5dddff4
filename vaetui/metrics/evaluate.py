"""How good is a model: ELBO terms, an importance-weighted bound on −log p(x), PSNR, SSIM,
active units, KL per latent dimension, (on synthetic faces) linear probes to the true factors, and
disentanglement (MIG, DCI, SAP; vaetui.metrics.disentangle) against the factors or, on CelebA, the attributes."""

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


def iwae_nll(model, x: torch.Tensor, k: int, likelihood: str, generator: torch.Generator) -> torch.Tensor:
    """The k-sample importance-weighted estimate of −log p(x) (Burda et al.), per image.

    In expectation it bounds −log p(x) from above and is never looser than the −ELBO
    (k = 1 is the −ELBO); a finite sample of it is a random draw, so on a given set of
    images it is usually, not always, below the −ELBO estimated from other draws.
    """
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    log_w = []
    for _ in range(k):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device)
        z = mu + std * eps
        log_px_z = -reconstruction_nll(model.decode_logits(z), x, likelihood)
        log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1)
        log_qz = (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi) - 0.5 * logvar).sum(1)
        log_w.append(log_px_z + log_pz - log_qz)
    return -(torch.logsumexp(torch.stack(log_w), 0) - math.log(k))


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


@torch.no_grad()
def evaluate(model, config, split, count: int = 1024, k: int = 64, seed: int = 0, batch_size: int = 64,
             progress: Callable[[int, int, str], None] | None = None, disentangle_n: int = 0) -> dict:
    """Every metric on the first `count` images of a split, with fixed noise: a comparable protocol."""
    model.eval()
    device = next(model.parameters()).device
    count = min(count, len(split))
    likelihood = config.model.likelihood
    gen = torch.Generator(device=device).manual_seed(seed)
    dims = 3 * config.data.size[0] * config.data.size[1]
    sums = {"recon": 0.0, "kl": 0.0, "iwae": 0.0, "se": 0.0, "ssim": 0.0, "discrete": 0.0}
    kl_dims = torch.zeros(config.model.latent, dtype=torch.float64)
    mus = []
    for start in range(0, count, batch_size):
        idx = np.arange(start, min(start + batch_size, count))
        x = to_float(split.images(idx), device, channels_last=False)
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, device=device)
        logits_z = model.decode_logits(z)
        sums["recon"] += float(reconstruction_nll(logits_z, x, likelihood).sum())
        if likelihood == "gaussian":
            sums["discrete"] += float(discretized_gaussian_nll(logits_z, x).sum())
        kd = kl_per_dim(mu, logvar)
        sums["kl"] += float(kd.sum())
        kl_dims += kd.sum(0).double().cpu()
        sums["iwae"] += float(iwae_nll(model, x, k, likelihood, gen).sum())
        recon = model.decode(mu)
        sums["se"] += float((recon - x).pow(2).mean(dim=(1, 2, 3)).sum())
        sums["ssim"] += ssim(recon, x) * len(idx)
        mus.append(mu.double().cpu())
        if progress:
            progress(min(start + batch_size, count), count, "evaluating")
    mu_all = torch.cat(mus)
    variances = mu_all.var(0, unbiased=True) if count > 1 else torch.zeros(config.model.latent)
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
        "latent": config.model.latent,
        "mu_variance": variances.tolist(),
        "kl_per_dim": (kl_dims / count).tolist(),
    }
    if hasattr(split, "factors"):  # synthetic faces: how linearly the code holds each true factor
        factors = split.factors(np.arange(count))
        feats = mu_all.numpy()
        out["probe_r2"] = {name: linear_probe_r2(feats, np.asarray(v, dtype=np.float64)) for name, v in factors.items()}
    if disentangle_n:
        scored = disentanglement(model, split, disentangle_n, batch_size, progress)
        if scored is not None:
            out["disentanglement"] = scored
    return out


@torch.no_grad()
def disentanglement(model, split, n: int, batch_size: int = 64,
                    progress: Callable[[int, int, str], None] | None = None) -> dict | None:
    """MIG, DCI and SAP of μ on the first n images against the split's factors (or attributes); None without labels."""
    from vaetui.metrics import disentangle
    from vaetui.metrics.disentangle import factors_of

    n = min(n, len(split))
    known = factors_of(split, np.arange(n))
    if known is None or n < 4:
        return None
    device = next(model.parameters()).device
    mus = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        mus.append(model.encode(to_float(split.images(idx), device, channels_last=False))[0].double().cpu())
        if progress:
            progress(min(start + batch_size, n), n, "encoding for disentanglement")
    factors, names, kind = known
    return disentangle.scores(torch.cat(mus).numpy(), factors, names, kind)


def newest_eval_with(run, key: str, split: str = "test") -> dict | None:
    """The run's newest stored evaluation on a split that holds `key` (e.g. 'disentanglement', 'samples')."""
    return next((r for r in run.evals(split=split) if key in r), None)


def samples_summary(s: dict, detail: bool = False) -> str:
    """'FD-attr 1.23  KID-attr 0.004  precision 0.71 recall 0.55', with (detail) the counts and FID or how to get it."""
    a = s["attr"]
    line = f"FD-attr {a['fd']:.3f}  KID-attr {a['kid']:.4f}  precision {a['precision']:.3f} recall {a['recall']:.3f}"
    if not detail:
        return line + (f"  FID {s['inception']['fd']:.2f}" if "inception" in s else "")
    line += f"  ({a['count']} prior samples vs {a['count']} images, attribute-network features)"
    if "inception" in s:
        i = s["inception"]
        line += f"\n           FID {i['fd']:.2f}  KID {i['kid']:.4f}  precision {i['precision']:.3f} recall {i['recall']:.3f}"
    else:
        from vaetui.metrics.features import INCEPTION_HINT

        line += f"\n           (no FID: {INCEPTION_HINT})"
    return line


def sample_quality(model, config, split, n: int = 2000, seed: int = 0, inception_weights=None,
                   progress: Callable[[int, int, str], None] | None = None) -> dict:
    """FD-attr, KID and precision/recall of n prior samples against the first n images of the split.

    The feature space is the dataset's attribute network (vaetui.metrics.features, trained once and
    cached); with inception_weights also standard FID/KID in Inception-v3 pool features.
    """
    from vaetui.metrics import features as attrnet
    from vaetui.metrics import fidelity
    from vaetui.data import open_split

    n = min(n, len(split))
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(n, config.model.latent, generator=gen, device=device)

    @torch.no_grad()
    def fakes(idx):
        return model.decode(z[torch.as_tensor(idx, device=device)]).float().cpu()

    net = attrnet.attribute_net(config.data, open_split(config.data, "train"), progress)
    out = {"protocol": {"count": n, "seed": seed, "prior": "N(0, I), temperature 1",
                        "attribute_net": attrnet.PROTOCOL}}
    out["attr"] = fidelity.compare(attrnet.features(net, split.images, n), attrnet.features(net, fakes, n), seed)
    if inception_weights:
        inception = attrnet.InceptionFeatures(inception_weights)
        out["inception"] = fidelity.compare(attrnet.features(inception, split.images, n, 32),
                                            attrnet.features(inception, fakes, n, 32), seed)
    return out
