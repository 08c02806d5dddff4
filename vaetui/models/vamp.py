"""The VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior"): the seed's network whose prior is a mixture of
its own posteriors at K learned pseudo-inputs, p(z) = 1/K Σ_k q(z | u_k).

The pseudo-inputs are images (K, 3, H, W) kept as logits, so they stay in [0, 1] through a sigmoid. During training
they go through the encoder in the same pass as the batch (one set of BatchNorm statistics per step, the same
running statistics when the model is evaluated). The KL to this prior has no closed form: it is estimated with the
posterior's own sample, log q(z|x) − log p(z).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaetui.models.protocol import ModelOutput, log_normal, model_device, reparameterize
from vaetui.models.vae import ConvVAE


class VampVAE(ConvVAE):
    """ConvVAE with K pseudo-inputs defining its prior."""

    def __init__(self, *args, pseudo_inputs: int = 32, **kwargs):
        super().__init__(*args, **kwargs)
        h, w = self.image_size
        # logits around 0: the pseudo-inputs start as faint noise about mid-grey
        self.pseudo = nn.Parameter(0.1 * torch.randn(pseudo_inputs, 3, h, w))

    @classmethod
    def from_config(cls, config, image_size=None) -> "VampVAE":
        m = config.model
        return cls(image_size=config.data.size, hidden=m.hidden, latent=m.latent, init=m.init,
                   pseudo_inputs=m.pseudo_inputs)

    def pseudo_images(self) -> torch.Tensor:
        """The pseudo-inputs as images in [0, 1]."""
        return torch.sigmoid(self.pseudo)

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior's K components: the posterior means and log-variances of the pseudo-inputs."""
        return self.encode(self.pseudo_images())

    @staticmethod
    def mixture_log_density(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
        """log (1/K Σ_k N(z; means_k, exp(logvars_k))) per code, in fp32 at least."""
        z, means, logvars = z.float(), means.float(), logvars.float()
        per = log_normal(z.unsqueeze(1), means.unsqueeze(0), logvars.unsqueeze(0)).sum(-1)  # (N, K)
        return torch.logsumexp(per, 1) - math.log(means.shape[0])

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, samples: int = 1) -> ModelOutput:
        n = x.shape[0]
        mu_all, logvar_all = self.encode(torch.cat([x, self.pseudo_images().to(x.dtype)]))
        mu, logvar, means, logvars = mu_all[:n], logvar_all[:n], mu_all[n:], logvar_all[n:]
        if samples == 1:
            z = reparameterize(mu, logvar, generator)
        else:
            rep = lambda t: t.unsqueeze(0).expand(samples, *t.shape).reshape(-1, t.shape[1])  # noqa: E731
            z = reparameterize(rep(mu), rep(logvar), generator)
        return ModelOutput(self.decode_logits(z), mu, logvar, z,
                           {"log_pz": self.mixture_log_density(z, means, logvars)})

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        means, logvars = self.components()
        return self.mixture_log_density(z, means, logvars)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """log q(z|x) − log p(z) at the posterior's sample z (at its mean when none is given)."""
        z = mu if z is None else z
        return log_normal(z.float(), mu.float(), logvar.float()).sum(1) - self.log_prior(z)

    def prior_sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """A pseudo-input chosen uniformly, then its posterior's mean plus T·σ noise; drawn on the generator's device."""
        where = generator.device if generator is not None else torch.device("cpu")
        with torch.no_grad():
            means, logvars = (t.float().to(where) for t in self.components())
        k = torch.randint(means.shape[0], (n,), generator=generator, device=where)
        eps = torch.randn(n, self.latent, generator=generator, device=where)
        z = means[k] + temperature * torch.exp(0.5 * logvars[k]) * eps
        return z.to(model_device(self))
