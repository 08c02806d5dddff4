"""The model protocol: what a family's network gives the rest of vaetui.

The trainer, checkpoints, evaluation, the explore screens and their twins call a network only through these methods,
so any `LatentModel` trains and is explored like the seed's ConvVAE. A network must define `encode` (images in [0, 1]
-> the posterior's mean and log-variance) and `decode_logits` (codes -> per-pixel logits), and set `latent` (the
code's size) and `image_size` (H, W). The rest has a default a family overrides where its model differs:

    forward(x, generator, samples)   encode, reparameterise, decode: a `ModelOutput` (the objective reads it)
    log_prior(z)                     log p(z) per code (default N(0, I); the VampPrior's mixture for vamp)
    kl(mu, logvar, z)                KL(q(z|x) || p(z)) per image (closed form for N(0, I); a one-sample estimate
                                     where the prior has no closed form)
    prior_sample(n, generator, T)    codes from the prior, T scaling the spread
    sample(n, generator, T)          images decoded from prior codes
    main_parameters()                what the main optimiser trains: all but the part named `aux_name`
    aux_loss(out, generator)         the loss of that part, trained by an optimiser of its own (FactorVAE's critic,
                                     VQ-VAE's PixelCNN prior), from a step's output

`latent_kind` says what the code is: "gaussian" (a continuous code: interpolation, traversal, the GMM sampler and
disentanglement are defined) or "codes" (a discrete code: they are not, and a screen says so in one line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)
NOT_FOR_CODES = "not defined for a discrete code"
REQUIRED = ("encode", "decode_logits")  # methods a network must define (the rest have defaults)
REQUIRED_ATTRIBUTES = ("latent", "image_size")


@dataclass(frozen=True)
class ModelOutput:
    """What forward() returns: decoder logits, the posterior's mean and log-variance, z, and what a family's
    objective needs besides (`extra`: vamp's log p(z), factorvae's critic logits)."""

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    extra: dict = field(default_factory=dict)

    @property
    def images(self) -> torch.Tensor:
        """Reconstructions in [0, 1] (sigmoid of the logits)."""
        return torch.sigmoid(self.logits.float())


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per code, summed over dimensions."""
    return (-0.5 * (LOG_2PI + z.float().pow(2))).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I)."""
    if generator is None:
        eps = torch.randn_like(mu)
    else:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


class LatentModel(nn.Module):
    """The base of every family's network (see the module's docstring for the protocol)."""

    latent_kind = "gaussian"
    aux_name: str | None = None  # a part with an optimiser of its own (its parameters are not the main optimiser's)
    latent: int
    image_size: tuple[int, int]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes -> images in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z).float())

    reparameterize = staticmethod(reparameterize)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, samples: int = 1) -> ModelOutput:
        """Encode, sample z with the reparameterisation trick, decode to logits. samples > 1 (IWAE): that many z per
        image, sample-major ((K·N, latent) codes and (K·N, 3, H, W) logits; mu and logvar stay (N, latent))."""
        mu, logvar = self.encode(x)
        if samples == 1:
            z = reparameterize(mu, logvar, generator)
        else:
            rep = lambda t: t.unsqueeze(0).expand(samples, *t.shape).reshape(-1, t.shape[1])  # noqa: E731
            z = reparameterize(rep(mu), rep(logvar), generator)
        return ModelOutput(self.decode_logits(z), mu, logvar, z)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per code: the standard normal."""
        return log_standard_normal(z)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per image, closed form (z is not needed)."""
        mu, logvar = mu.float(), logvar.float()
        return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1)

    def prior_sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n codes from N(0, T²I), drawn on the generator's device (the CPU by default) and moved to the model's."""
        where = generator.device if generator is not None else torch.device("cpu")
        z = torch.randn(n, self.latent, generator=generator, device=where) * temperature
        return z.to(model_device(self))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images decoded from prior codes."""
        return self.decode(self.prior_sample(n, generator, temperature))

    def aux(self) -> nn.Module | None:
        """The part trained by its own optimiser, or None."""
        return getattr(self, self.aux_name) if self.aux_name else None

    def main_parameters(self) -> list[nn.Parameter]:
        """The parameters the main optimiser trains: all but the aux part's."""
        aux = self.aux()
        own = {id(p) for p in aux.parameters()} if aux is not None else set()
        return [p for p in self.parameters() if id(p) not in own]

    def aux_loss(self, out: ModelOutput, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError


def model_device(model: nn.Module) -> torch.device:
    """Where a model's parameters (or buffers) live."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def missing(cls) -> list[str]:
    """What a class lacks of the protocol (empty when it follows it): methods it does not define itself."""
    out = []
    for name in REQUIRED:
        impl = getattr(cls, name, None)
        if impl is None or impl is getattr(LatentModel, name):
            out.append(f"{name}()")
    return out
