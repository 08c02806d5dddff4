"""The β-VAE objective: reconstruction terms, closed-form KL, the KL schedule (warm-up, cycles), free bits,\nunit conversions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from vaetui.errors import ConfigError

LN2 = math.log(2.0)
# Gaussian likelihood: fixed unit-free sigma on pixels in [0, 1]; 0.1 keeps the
# reconstruction term on a scale comparable to BCE so one β means roughly the same.
GAUSSIAN_SIGMA = 0.1


class _BernoulliNLL(torch.autograd.Function):
    """Per-image BCE with logits, softplus(l) - x*l summed, in fp32 (at least) whatever the logits' dtype; its gradient
    (sigmoid(l) - x) * g comes back in the logits' dtype. A few vectorised passes over the pixels each way, where
    `F.binary_cross_entropy_with_logits` made more, one of them log_sigmoid (38 ms of a 218x178 bf16 step)."""

    @staticmethod
    def forward(ctx, logits, x):
        wide = torch.promote_types(logits.dtype, torch.float32)  # fp32, or float64 when given it
        lf, xf = logits.to(wide), x.to(wide)
        ctx.save_for_backward(lf, xf)
        ctx.dtype = logits.dtype
        # softplus(l) = max(l, 0) + log(1 + exp(-|l|)): torch's log1p (and softplus, log_sigmoid) is not
        # vectorised on CPU, 34 ms for a 218x178 batch against 4 for exp, add and log; 1 + e rounds e below
        # 2^-24 away, 6e-8 nats a pixel at most
        nll = lf.abs().neg_().exp_().add_(1).log_().add_(lf.clamp_min(0))
        return nll.addcmul_(xf, lf, value=-1).flatten(1).sum(1)

    @staticmethod
    def backward(ctx, grad):
        lf, xf = ctx.saved_tensors
        per_image = grad.view(-1, *[1] * (lf.dim() - 1))
        grad_logits = torch.sigmoid(lf).sub_(xf).mul_(per_image).to(ctx.dtype) if ctx.needs_input_grad[0] else None
        grad_x = (-lf * per_image).to(ctx.dtype) if ctx.needs_input_grad[1] else None
        return grad_logits, grad_x


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image under a Bernoulli decoder: BCE summed over pixels (the seed's loss), stable via logits."""
    return _BernoulliNLL.apply(logits, x)


def gaussian_nll(logits: torch.Tensor, x: torch.Tensor, sigma: float = GAUSSIAN_SIGMA) -> torch.Tensor:
    """-log p(x|z) per image under N(sigmoid(logits), sigma^2): scaled MSE plus the normaliser."""
    mean = torch.sigmoid(logits.float())
    sq = (mean - x.float()).pow(2).flatten(1).sum(1)
    d = x[0].numel()
    return 0.5 * sq / sigma**2 + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))


def discretized_gaussian_nll(logits: torch.Tensor, x: torch.Tensor, sigma: float = GAUSSIAN_SIGMA) -> torch.Tensor:
    """-log P(x|z) per image of 8-bit pixels under N(sigmoid(logits), sigma^2) integrated over each pixel's bin.

    A probability of the 256 discrete values (the outer bins reach to ±inf), so bits/dim
    from it are comparable with published ones; the continuous density above is not.
    """
    mean = torch.sigmoid(logits.float())
    k = torch.round(x.float() * 255.0)
    upper = torch.where(k >= 255, torch.full_like(k, math.inf), (k + 0.5) / 255.0)
    lower = torch.where(k <= 0, torch.full_like(k, -math.inf), (k - 0.5) / 255.0)
    prob = torch.special.ndtr((upper - mean) / sigma) - torch.special.ndtr((lower - mean) / sigma)
    return -torch.log(prob.clamp_min(1e-12)).flatten(1).sum(1)


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli") -> torch.Tensor:
    """-log p(x|z) per image for the configured likelihood."""
    if likelihood == "bernoulli":
        return bernoulli_nll(logits, x)
    if likelihood == "gaussian":
        return gaussian_nll(logits, x)
    raise ConfigError("model.likelihood", f"unknown likelihood {likelihood!r}: use bernoulli or gaussian")


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per image and latent dimension, closed form, (N, latent)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || p(z)) per image, summed over latent dimensions, (N,)."""
    return kl_per_dim(mu, logvar).sum(1)


def beta_at(step: int, beta: float, warmup_steps: int, cycles: int = 0, ratio: float = 0.5,
            total_steps: int = 0) -> float:
    """β at a step: the linear warm-up β·min(1, step / warmup_steps), times the cyclical schedule.

    Cyclical annealing (Fu et al. 2019): the planned `total_steps` split into `cycles`
    equal cycles; within each, the weight rises linearly from 0 to 1 over the first
    `ratio` of the cycle and stays at 1 for the rest. cycles 0 (or 1 with ratio 0): no cycling.
    """
    weight = 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)
    if cycles > 0 and total_steps > 0 and ratio > 0:
        period = total_steps / cycles
        tau = (step % period) / period
        weight *= min(1.0, tau / ratio)
    return beta * weight


def schedule_marks(warmup_steps: int, cycles: int, total_steps: int) -> list[tuple[int, str]]:
    """Where the KL schedule changes, in steps: the warm-up's end ("w") and the start of each later cycle ("c")."""
    out = [(warmup_steps, "w")] if warmup_steps > 0 else []
    if cycles > 1 and total_steps > 0:
        out += [(round(total_steps * k / cycles), "c") for k in range(1, cycles)]
    return out


def schedule_beta(step: int, train, total_steps: int) -> float:
    """β at a step under a TrainConfig's KL schedule (warm-up, cycles over the planned steps)."""
    return beta_at(step, train.beta, train.kl_warmup, train.kl_cycles, train.kl_ratio, total_steps)


@dataclass
class LossTerms:
    """Batch sums of the loss terms, kept on the device; read back only when reported."""

    loss: torch.Tensor  # β-weighted objective, mean over the batch (what is optimised)
    recon_sum: torch.Tensor  # Σ over images of -log p(x|z)
    kl_sum: torch.Tensor  # Σ over images of KL
    count: int
    terms: dict = field(default_factory=dict)  # a family's own terms, Σ over images each (vaetui.models.families)


def vae_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float, likelihood: str = "bernoulli", free_bits: float = 0.0) -> LossTerms:
    """β-VAE loss per image (recon + β·KL), averaged over the batch so lr does not depend on batch size.

    free_bits λ > 0 (Kingma et al. 2016, per dimension): the optimised KL term is
    Σ_j max(λ, batch-mean KL_j), so no dimension is pushed below λ nats; the reported
    KL (kl_sum) is always the true one.
    """
    recon = reconstruction_nll(logits, x, likelihood)
    n = x.shape[0]
    per_dim = kl_per_dim(mu, logvar)
    recon_sum, kl_sum = recon.sum(), per_dim.sum()
    kl_term = kl_sum if free_bits <= 0 else per_dim.mean(0).clamp_min(free_bits).sum() * n
    return LossTerms((recon_sum + beta * kl_term) / n, recon_sum.detach(), kl_sum.detach(), n)


def nats_per_dim(nats_per_image: float, dims: int) -> float:
    """Convert a per-image value in nats to nats per pixel-channel."""
    return nats_per_image / dims


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Convert a per-image value in nats to bits per pixel-channel."""
    return nats_per_image / (dims * LN2)
