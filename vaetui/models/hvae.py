"""A two-level hierarchical VAE with top-down inference in residual blocks (LVAE, Sønderby et al. 2016; NVAE, Vahdat
& Kautz 2020), small enough for two CPU cores.

Bottom-up, the encoder halves the image four times (a stride-2 stem, then per level a residual block and a stride-2
convolution: nothing runs at the image's full size but the stem and the last convolution to pixels). The top code z2
(`latent` numbers) is read from the last features; the lower code z1 is a map of LOW_CHANNELS channels at the third
level (8x8 for 64x64 images). Top-down, the decoder turns z2 into features at z1's level, where the prior
p(z1 | z2) is read, and the posterior q(z1 | x, z2) is that prior plus a correction from the bottom-up features at
the same level (NVAE's residual parameterisation); z1 joins the features, which are upsampled to the image.

    KL = KL(q(z2|x) || N(0, I)) + KL(q(z1|x, z2) || p(z1|z2))   (both closed form, given the sampled z2)

For the rest of vaetui the code is z2 and z1 side by side (`latent` + z1's numbers): decode() of such a code is
deterministic, prior samples are drawn top-down, and encode() gives the posterior along its mean path (z2 at its
mean). A bound computed with that as the proposal (eval's ELBO and IWAE) is a valid, slightly looser, bound.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaetui.models import convgrad
from vaetui.models.protocol import LatentModel, ModelOutput, log_normal, model_device, reparameterize
from vaetui.models.vae import encoder_sizes

LOW_CHANNELS = 4  # z1's channels at its level


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) elementwise."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) * torch.exp(-logvar_p) - 1.0)


class ResBlock(nn.Module):
    """x + conv(SiLU(BN(conv(SiLU(BN(x)))))), the second convolution starting at zero (the block starts as identity)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels), nn.SiLU(), convgrad.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels), nn.SiLU(), convgrad.Conv2d(channels, channels, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x):
        return x + self.body(x)


class HierarchicalVAE(LatentModel):
    """Two latent levels: z2 (a vector) on top, z1 (a map) below; see the module's docstring."""

    def __init__(self, image_size=(64, 64), hidden: int = 32, latent: int = 32):
        super().__init__()
        h, w = image_size
        self.image_size = (h, w)
        self.top = latent
        c = hidden
        self.sizes = list(zip(encoder_sizes(h), encoder_sizes(w)))  # (H, W) at each of the five levels
        chans = [c, c, 2 * c, 4 * c, 4 * c]  # at each level: the image's size, then halved four times
        # No block at the image's own size (the costliest convolutions): a stride-2 stem, then a residual block and
        # a stride-2 convolution per level.
        self.stem = convgrad.Conv2d(3, c, 3, stride=2, padding=1)
        self.down = nn.ModuleList(
            nn.Sequential(ResBlock(chans[i]), convgrad.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1))
            for i in range(1, 4)
        )
        th, tw = self.sizes[4]
        self.top_shape = (chans[4], th, tw)
        self.to_top = nn.Linear(math.prod(self.top_shape), 2 * latent)
        self.from_top = nn.Linear(latent, math.prod(self.top_shape))
        self.top_block = ResBlock(chans[4])
        self.up_to_low = convgrad.Conv2d(chans[4], chans[3], 3, padding=1)
        lh, lw = self.sizes[3]
        self.low_shape = (LOW_CHANNELS, lh, lw)
        self.prior_low = convgrad.Conv2d(chans[3], 2 * LOW_CHANNELS, 3, padding=1)
        self.posterior_low = convgrad.Conv2d(2 * chans[3], 2 * LOW_CHANNELS, 3, padding=1)
        self.from_low = convgrad.Conv2d(LOW_CHANNELS, chans[3], 1)
        self.up = nn.ModuleList(  # level 3 -> 2 -> 1: a block, then upsample and a convolution to the next's channels
            nn.ModuleList([ResBlock(chans[i + 1]), convgrad.Conv2d(chans[i + 1], chans[i], 3, padding=1)])
            for i in (2, 1)
        )
        self.head = nn.Sequential(ResBlock(chans[1]))
        self.to_pixels = convgrad.Conv2d(chans[1], 3, 3, padding=1)  # at the image's size, after the last upsampling
        self.latent = latent + math.prod(self.low_shape)
        for layer in (self.to_top, self.posterior_low):  # start at the prior: small posterior corrections
            nn.init.normal_(layer.weight, std=1e-3)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.prior_low.weight)
        nn.init.zeros_(self.prior_low.bias)

    @classmethod
    def from_config(cls, config) -> "HierarchicalVAE":
        return cls(image_size=config.data.size, hidden=config.model.hidden, latent=config.model.latent)

    # ------------------------------------------------------------------ the two passes
    def _bottom_up(self, x):
        """Features at z1's level and at the top."""
        h = self.stem(x)
        feats = []
        for block in self.down:
            h = block(h)
            feats.append(h)
        return feats[1], feats[2]

    def _top_params(self, top_features):
        mu, logvar = self.to_top(top_features.flatten(1)).chunk(2, 1)
        return mu, logvar

    def _to_low(self, z2):
        """Top-down: z2 -> features at z1's level, and the prior p(z1 | z2) read from them."""
        d = self.top_block(self.from_top(z2).view(-1, *self.top_shape))
        d = self.up_to_low(F.interpolate(d, size=self.sizes[3], mode="nearest"))
        mu_p, logvar_p = self.prior_low(d).chunk(2, 1)
        return d, mu_p, logvar_p

    def _to_image(self, d, z1):
        h = d + self.from_low(z1)
        for (block, conv), size in zip(self.up, (self.sizes[2], self.sizes[1])):
            h = conv(F.interpolate(block(h), size=size, mode="nearest"))
        h = F.interpolate(self.head(h), size=self.sizes[0], mode="nearest")
        return self.to_pixels(h)

    def _split(self, z):
        return z[:, : self.top], z[:, self.top :].reshape(-1, *self.low_shape)

    def _join(self, z2, z1):
        return torch.cat([z2, z1.flatten(1)], 1)

    # ------------------------------------------------------------------ the protocol
    def forward(self, x, generator=None, samples: int = 1) -> ModelOutput:
        low_feats, top_feats = self._bottom_up(x)
        mu2, logvar2 = self._top_params(top_feats)
        z2 = reparameterize(mu2, logvar2, generator)
        d, mu_p, logvar_p = self._to_low(z2)
        dmu, dlogvar = self.posterior_low(torch.cat([d, low_feats], 1)).chunk(2, 1)
        mu1, logvar1 = mu_p + dmu, logvar_p + dlogvar
        z1 = reparameterize(mu1, logvar1, generator)
        kl2 = gaussian_kl(mu2.float(), logvar2.float(), torch.zeros_like(mu2, dtype=torch.float32),
                          torch.zeros_like(logvar2, dtype=torch.float32)).sum(1)
        kl1 = gaussian_kl(mu1.float(), logvar1.float(), mu_p.float(), logvar_p.float()).flatten(1).sum(1)
        return ModelOutput(self._to_image(d, z1), self._join(mu2, mu1), self._join(logvar2, logvar1),
                           self._join(z2, z1), {"kl": kl1 + kl2, "kl_top": kl2, "kl_low": kl1})

    def encode(self, x):
        """The posterior along its mean path: q(z2|x), then q(z1|x, z2 = its mean)."""
        low_feats, top_feats = self._bottom_up(x)
        mu2, logvar2 = self._top_params(top_feats)
        d, mu_p, logvar_p = self._to_low(mu2)
        dmu, dlogvar = self.posterior_low(torch.cat([d, low_feats], 1)).chunk(2, 1)
        return self._join(mu2, mu_p + dmu), self._join(logvar2, logvar_p + dlogvar)

    def decode_logits(self, z):
        z2, z1 = self._split(z)
        d, _, _ = self._to_low(z2)
        return self._to_image(d, z1)

    def log_prior(self, z):
        """log N(z2; 0, I) + log p(z1 | z2)."""
        z2, z1 = self._split(z.float())
        _, mu_p, logvar_p = self._to_low(z2)
        top = (-0.5 * (math.log(2 * math.pi) + z2.pow(2))).sum(1)
        return top + log_normal(z1, mu_p.float(), logvar_p.float()).flatten(1).sum(1)

    def kl(self, mu, logvar, z=None):
        """log q(z|x) − log p(z) at the code z (at the posterior's mean when none is given)."""
        z = mu if z is None else z
        return log_normal(z.float(), mu.float(), logvar.float()).sum(1) - self.log_prior(z)

    def prior_sample(self, n, generator=None, temperature: float = 1.0):
        """Top-down: z2 ~ N(0, T²I), then z1 ~ p(z1 | z2) with its spread scaled by T."""
        where = generator.device if generator is not None else torch.device("cpu")
        device = model_device(self)
        z2 = (torch.randn(n, self.top, generator=generator, device=where) * temperature).to(device)
        with torch.no_grad():
            _, mu_p, logvar_p = self._to_low(z2)
        eps = torch.randn(n, *self.low_shape, generator=generator, device=where).to(device)
        z1 = mu_p.float() + temperature * torch.exp(0.5 * logvar_p.float()) * eps
        return self._join(z2, z1)
