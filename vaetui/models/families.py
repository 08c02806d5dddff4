"""The VAE families: each one's network (a vaetui.models.protocol.LatentModel) and training objective.

A family gives the trainer `build(config)` (its network), `objective(out, x, beta)` -> LossTerms (the loss to
minimise per image; the summed reconstruction NLL and the KL, the same for every family so runs compare; and the
family's own named terms), `forward_options` (what its objective needs from the forward pass: IWAE's K samples),
and its paper. The settings a family alone reads are listed in vaetui.config.settings.FAMILY_SETTINGS.

- vae: the β-VAE (Higgins et al. 2017), the seed's objective: recon + β·KL (free bits optional).
- iwae: the importance-weighted bound (Burda et al. 2016) with K samples per image; β does not enter it.
- beta-tcvae: β-TCVAE (Chen et al. 2018): the KL split into index-code mutual information, total correlation and
  dimension-wise KL, weighted α, β, γ; q(z) estimated by minibatch-weighted sampling over the dataset's N images.
- factorvae: FactorVAE (Kim & Mnih 2018): recon + β·KL + γ·TC, the total correlation estimated by a critic trained
  with its own optimiser (vaetui.models.factorvae).
- vamp: the VampPrior (Tomczak & Welling 2018): recon + β·(log q(z|x) − log p(z)) with p(z) a mixture of the
  posteriors of K learned pseudo-inputs (vaetui.models.vamp).
- hvae: a two-level hierarchical VAE with top-down inference in residual blocks (LVAE / NVAE; vaetui.models.hvae):
  recon + β·(the top level's KL + the lower level's KL to its top-down prior).
- vqvae: VQ-VAE (van den Oord et al. 2017): recon + commitment, an EMA codebook, then a gated PixelCNN prior over
  the codes trained in the run's last `prior_fraction` of steps (vaetui.models.vqvae).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from vaetui.models.losses import LossTerms, kl_per_dim, reconstruction_nll, vae_loss
from vaetui.models.protocol import LOG_2PI, log_normal


def _conv_vae(config):
    from vaetui.models.vae import ConvVAE

    return ConvVAE.from_config(config)


def _factor_vae(config):
    from vaetui.models.factorvae import FactorVAE

    return FactorVAE.from_config(config)


def _vamp_vae(config):
    from vaetui.models.vamp import VampVAE

    return VampVAE.from_config(config)


@dataclass(frozen=True)
class Family:
    """A family's name, its paper, what its loss says, and how the trainer computes it."""

    name: str
    paper: str
    terms: tuple[str, ...]  # its own named terms, beyond recon and KL (each a per-image mean in the log)
    objective: Callable  # (out, x, beta, config, dataset_size) -> LossTerms
    samples: Callable = lambda config: 1  # decodes per image in training (IWAE: K)
    network: Callable = _conv_vae  # config -> its LatentModel
    aux_betas: tuple[float, float] | None = None  # the network's aux part has an Adam of its own, with these betas
    # (config, progress 0..1 of the run) -> (main, aux): which of the two a step trains (FactorVAE: both; VQ-VAE: the
    # network, then its prior)
    phases: Callable = lambda config, progress: (True, True)

    def build(self, config):
        """The family's network for a run config (on the CPU, initialised from the current torch seed)."""
        return self.network(config)

    def forward_options(self, config) -> dict:
        """Keyword arguments of the network's forward pass this family needs."""
        k = self.samples(config)
        return {"samples": k} if k > 1 else {}


def _vae(out, x, beta, config, dataset_size) -> LossTerms:
    return vae_loss(out.logits, x, out.mu, out.logvar, beta, config.model.likelihood, config.train.free_bits)


def _iwae(out, x, beta, config, dataset_size) -> LossTerms:
    """−(logsumexp_k log w_k − log K) per image, log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x)."""
    n = x.shape[0]
    k = out.z.shape[0] // n
    xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
    nll = reconstruction_nll(out.logits, xs, config.model.likelihood).view(k, n)
    z = out.z.view(k, n, -1).float()
    mu, logvar = out.mu.float().unsqueeze(0), out.logvar.float().unsqueeze(0)
    log_pz = (-0.5 * (LOG_2PI + z.pow(2))).sum(-1)
    log_qz = log_normal(z, mu, logvar).sum(-1)
    log_w = -nll + log_pz - log_qz
    bound = torch.logsumexp(log_w, 0) - math.log(k)
    kl_sum = kl_per_dim(out.mu, out.logvar).sum()
    return LossTerms(-bound.sum() / n, nll[0].sum().detach(), kl_sum.detach(), n, {"iwae": (-bound.sum()).detach()})


def _beta_tcvae(out, x, beta, config, dataset_size) -> LossTerms:
    """recon + α·MI + β·TC + γ·dimension-wise KL per image, with minibatch-weighted sampling for q(z)."""
    n = x.shape[0]
    nll = reconstruction_nll(out.logits, x, config.model.likelihood)
    z, mu, logvar = out.z.float(), out.mu.float(), out.logvar.float()
    # log q(z_i | x_m) per dimension, for every pair (i, m) of the batch
    pairs = log_normal(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # (n, n, D)
    log_nm = math.log(max(dataset_size, n) * n)
    log_qz = torch.logsumexp(pairs.sum(2), 1) - log_nm
    log_qz_dims = (torch.logsumexp(pairs, 1) - log_nm).sum(1)
    log_qz_x = log_normal(z, mu, logvar).sum(1)
    log_pz = (-0.5 * (LOG_2PI + z.pow(2))).sum(1)
    mi, tc, dwkl = log_qz_x - log_qz, log_qz - log_qz_dims, log_qz_dims - log_pz
    tcfg = config.train
    loss = (nll + tcfg.alpha * mi + beta * tc + tcfg.gamma * dwkl).sum() / n
    kl_sum = kl_per_dim(out.mu, out.logvar).sum()
    terms = {"mi": mi.sum().detach(), "tc": tc.sum().detach(), "dwkl": dwkl.sum().detach()}
    return LossTerms(loss, nll.sum().detach(), kl_sum.detach(), n, terms)


def _factorvae(out, x, beta, config, dataset_size) -> LossTerms:
    """recon + β·KL + γ·TC per image, TC the critic's log-odds that the code comes from q(z)."""
    n = x.shape[0]
    nll = reconstruction_nll(out.logits, x, config.model.likelihood)
    kl = kl_per_dim(out.mu, out.logvar).sum(1)
    logits = out.extra["critic_logits"].float()
    tc = logits[:, 0] - logits[:, 1]
    loss = (nll + beta * kl + config.train.gamma * tc).sum() / n
    return LossTerms(loss, nll.sum().detach(), kl.sum().detach(), n, {"tc": tc.sum().detach()})


def _vamp(out, x, beta, config, dataset_size) -> LossTerms:
    """recon + β·(log q(z|x) − log p(z)) per image, p the VampPrior (the forward pass gives log p(z))."""
    n = x.shape[0]
    nll = reconstruction_nll(out.logits, x, config.model.likelihood)
    kl = log_normal(out.z.float(), out.mu.float(), out.logvar.float()).sum(1) - out.extra["log_pz"]
    loss = (nll + beta * kl).sum() / n
    return LossTerms(loss, nll.sum().detach(), kl.sum().detach(), n)


def _elbo(out, x, beta, config, dataset_size) -> LossTerms:
    """recon + β·KL per image, the KL the forward pass's own when it gives one (extra["kl"], per image), else the
    closed form against N(0, I): a user's model (vaetui.models.user)."""
    n = x.shape[0]
    nll = reconstruction_nll(out.logits, x, config.model.likelihood)
    kl = out.extra["kl"].float() if "kl" in out.extra else kl_per_dim(out.mu, out.logvar).sum(1)
    return LossTerms((nll + beta * kl).sum() / n, nll.sum().detach(), kl.sum().detach(), n)


def _hvae(out, x, beta, config, dataset_size) -> LossTerms:
    """recon + β·(KL of the top level + KL of the lower level to its top-down prior), each level's KL logged."""
    t = _elbo(out, x, beta, config, dataset_size)
    return LossTerms(t.loss, t.recon_sum, t.kl_sum, t.count,
                     {"kl_top": out.extra["kl_top"].sum().detach(), "kl_low": out.extra["kl_low"].sum().detach()})


def _vqvae(out, x, beta, config, dataset_size) -> LossTerms:
    """recon + commitment·‖z_e − sg(z_q)‖² per image (the codebook learns by moving averages). The KL reported is the
    uniform prior's, log K a position (the paper's); the learned prior's NLL is its own term once it trains."""
    n = x.shape[0]
    nll = reconstruction_nll(out.logits, x, config.model.likelihood)
    commit = out.extra["commitment"]
    positions = out.extra["codes"][0].numel()
    kl = out.extra.get("prior_nll")  # the learned prior's, once it trains (given by the step's aux_loss)
    if kl is None:
        kl = torch.full_like(nll, positions * math.log(config.model.codebook_size))
    loss = (nll + config.train.commitment * commit).sum() / n
    terms = {"commit": commit.sum().detach(), "perplexity": out.extra["perplexity"].detach() * n,
             "usage": out.extra["usage"].detach() * n}
    return LossTerms(loss, nll.sum().detach(), kl.sum().detach(), n, terms)


def _vq_phases(config, progress: float) -> tuple[bool, bool]:
    """The network for the first (1 − prior_fraction) of the run (its planned steps, or its time budget), then its
    PixelCNN prior alone."""
    network = progress < 1 - config.train.prior_fraction
    return network, not network


def _vector_quantised(config):
    from vaetui.models.vqvae import VQVAE

    return VQVAE.from_config(config)


def _hierarchical_vae(config):
    from vaetui.models.hvae import HierarchicalVAE

    return HierarchicalVAE.from_config(config)


FAMILIES: dict[str, Family] = {
    "vae": Family("vae", "Higgins et al. 2017, β-VAE (Kingma & Welling 2014)", (), _vae),
    "iwae": Family("iwae", "Burda et al. 2016, Importance Weighted Autoencoders", ("iwae",), _iwae,
                   samples=lambda config: config.train.iw_samples),
    "beta-tcvae": Family("beta-tcvae", "Chen et al. 2018, Isolating Sources of Disentanglement in VAEs",
                         ("mi", "tc", "dwkl"), _beta_tcvae),
    "factorvae": Family("factorvae", "Kim & Mnih 2018, Disentangling by Factorising", ("tc",), _factorvae,
                        network=_factor_vae, aux_betas=(0.5, 0.9)),
    "vamp": Family("vamp", "Tomczak & Welling 2018, VAE with a VampPrior", (), _vamp, network=_vamp_vae),
    "hvae": Family("hvae", "Sønderby et al. 2016 (LVAE), Vahdat & Kautz 2020 (NVAE): a two-level hierarchical VAE",
                   ("kl_top", "kl_low"), _hvae, network=_hierarchical_vae),
    "vqvae": Family("vqvae", "van den Oord et al. 2017, Neural Discrete Representation Learning (with a gated "
                    "PixelCNN prior, van den Oord et al. 2016)", ("commit", "perplexity", "usage"), _vqvae,
                    network=_vector_quantised, aux_betas=(0.9, 0.999), phases=_vq_phases),
}


def family_of(config, trust: bool = False) -> Family:
    """The family a run's config names: a built-in one, or a user's own model (a file is run only when trusted: see
    vaetui.models.user; trust=True records it, for a model a person names on their command line)."""
    name = config.model.family
    if name in FAMILIES:
        return FAMILIES[name]
    from vaetui.models import user

    cls = user.load_class(name, trust=trust)
    return Family(name, f"your own model, {cls.__name__}", (), _elbo, network=lambda cfg: user.build(cls, cfg, name))
