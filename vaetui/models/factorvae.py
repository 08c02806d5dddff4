"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising"): the seed's network with a critic that tells codes
of q(z) from codes whose dimensions were shuffled across the batch (samples of the product of its marginals).

The critic's two logits estimate the total correlation, TC ≈ E[logit_q(z) − logit_perm(z)] (the density-ratio
trick), which the VAE's objective penalises with weight γ. The critic is trained by its own Adam (β = (0.5, 0.9),
as in the paper) on the batch's codes, detached, against their shuffle: `critic_loss`. Its weights are a part of the
model's state (`critic.*` in a checkpoint) and its optimiser is saved beside the main one (`aux_optimizer`), so a
resume is exact.
"""

from __future__ import annotations

import torch
from torch import nn

from vaetui.models.protocol import ModelOutput
from vaetui.models.vae import ConvVAE

CRITIC_HIDDEN = 256
CRITIC_LAYERS = 3


def critic(latent: int, hidden: int = CRITIC_HIDDEN, layers: int = CRITIC_LAYERS) -> nn.Sequential:
    """An MLP code -> 2 logits (from q(z), from the product of marginals)."""
    parts, width = [], latent
    for _ in range(layers):
        parts += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    return nn.Sequential(*parts, nn.Linear(width, 2))


def shuffle_dimensions(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Each dimension of the batch's codes permuted across the batch on its own: a sample of Π_j q(z_j)."""
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return torch.gather(z, 0, keys.argsort(0))


class FactorVAE(ConvVAE):
    """ConvVAE with a total-correlation critic (`critic`, trained apart from the main parameters)."""

    aux_name = "critic"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.critic = critic(self.latent)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, samples: int = 1) -> ModelOutput:
        out = super().forward(x, generator, samples)
        return ModelOutput(out.logits, out.mu, out.logvar, out.z, {"critic_logits": self.critic(out.z)})

    def aux_loss(self, out: ModelOutput, generator: torch.Generator | None = None) -> torch.Tensor:
        """The critic's cross-entropy on the batch's codes (class 0) and their shuffle (class 1), codes detached."""
        return self.critic_loss(out.z, generator)

    def critic_loss(self, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        z = z.detach().float()
        fake = shuffle_dimensions(z, generator)
        logits = self.critic(torch.cat([z, fake]))
        labels = torch.cat([torch.zeros(len(z)), torch.ones(len(z))]).long().to(z.device)
        return nn.functional.cross_entropy(logits.float(), labels)
