"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning") with a gated PixelCNN prior over its
codes (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders"), trained as a second stage of
the same run so it can generate.

The encoder brings a 64x64 image to an 8x8 map of `latent`-dimensional vectors (three stride-2 steps); each is
replaced by its nearest of `codebook_size` codebook vectors, and the decoder maps the quantised map back to pixels.
The codebook is learned by exponential moving averages (decay 0.99) of the encoder outputs assigned to each code,
not by gradients; a code no image used for a while (its average count below DEAD_BELOW) is restarted at a random
encoder output of the batch. The gradient passes the quantiser straight through (z_e + sg(z_q − z_e)), and the
commitment loss ‖z_e − sg(z_q)‖² (weighted `--commitment`) keeps the encoder near its codes.

The code is discrete (`latent_kind = "codes"`): for the rest of vaetui a code is the quantised map, flattened;
decode() of such a map is the picture, interpolation runs between two maps in embedding space, and traversals and the
continuous samplers are not defined. The prior p(codes) is the PixelCNN (an autoregressive model over the map in
raster order); its negative log-likelihood of an image's codes is the rate term of the bound (the posterior is one
point: KL = −log p(codes)), and prior samples are drawn from it position by position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaetui.models import convgrad
from vaetui.models.hvae import ResBlock
from vaetui.models.protocol import LatentModel, ModelOutput, model_device
from vaetui.models.vae import encoder_sizes

DECAY = 0.99
DEAD_BELOW = 0.01  # a code whose moving-average count falls below this is restarted
POINT_LOGVAR = -30.0  # the posterior is a point: what encode() gives as its log-variance
PRIOR_CHANNELS = 64
PRIOR_LAYERS = 6
PRIOR_BETAS = (0.9, 0.999)


class Quantiser(nn.Module):
    """The EMA codebook: K vectors of size D, with their moving-average counts and sums (buffers: checkpointed)."""

    def __init__(self, codes: int, dim: int):
        super().__init__()
        self.codes, self.dim = codes, dim
        embedding = torch.randn(codes, dim) * 0.1
        self.register_buffer("embedding", embedding)
        self.register_buffer("counts", torch.ones(codes))
        self.register_buffer("sums", embedding.clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each row of (M, D) vectors."""
        e = self.embedding
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1).unsqueeze(0)
        return dist.argmin(1)

    def forward(self, z_e: torch.Tensor, generator=None):
        """(straight-through quantised map, code indices (N, h, w), commitment per image, perplexity, usage)."""
        n, d, h, w = z_e.shape
        flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, d)
        idx = self.nearest(flat.detach())
        onehot = F.one_hot(idx, self.codes).float()
        used = onehot.sum(0)
        if self.training:
            self._update(flat.detach(), onehot, used, generator)
        z_q = self.embedding[idx].view(n, h, w, d).permute(0, 3, 1, 2)
        commitment = (z_e.float() - z_q.detach()).pow(2).flatten(1).sum(1)
        probs = used / used.sum()
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        usage = (used > 0).float().mean()
        z_st = z_e + (z_q.to(z_e.dtype) - z_e).detach()
        return z_st, idx.view(n, h, w), commitment, perplexity, usage

    @torch.no_grad()
    def _update(self, flat, onehot, used, generator) -> None:
        self.counts.mul_(DECAY).add_(used, alpha=1 - DECAY)
        self.sums.mul_(DECAY).add_(onehot.T @ flat, alpha=1 - DECAY)
        total = self.counts.sum()
        smoothed = (self.counts + 1e-5) / (total + self.codes * 1e-5) * total  # Laplace: no division by zero
        self.embedding.copy_(self.sums / smoothed.unsqueeze(1))
        dead = (self.counts < DEAD_BELOW).nonzero().flatten()
        if len(dead):  # restart unused codes at encoder outputs of this batch
            pick = torch.randint(len(flat), (len(dead),), generator=generator, device=generator.device
                                 if generator is not None else flat.device).to(flat.device)
            self.embedding[dead] = flat[pick]
            self.sums[dead] = flat[pick]
            self.counts[dead] = 1.0

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Code indices (N, h, w) -> the quantised map (N, D, h, w)."""
        return self.embedding[idx].permute(0, 3, 1, 2)


class MaskedGatedLayer(nn.Module):
    """One gated PixelCNN layer: a vertical stack (the rows above) and a horizontal stack (the row so far, left of the
    position; the first layer excludes the position itself), with gated tanh·σ units and a residual path."""

    def __init__(self, channels: int, first: bool):
        super().__init__()
        self.first = first
        self.vertical = nn.Conv2d(channels, 2 * channels, (2, 3), padding=(1, 1))  # rows i-1 and i, cropped below
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, 2), padding=(0, 1))  # columns j-1 and j
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    @staticmethod
    def gate(x):
        a, b = x.chunk(2, 1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v, h):
        rows, cols = v.shape[-2:]
        hw = self.horizontal.weight
        if self.first:  # the first layer must not see the position itself (the rest see what it saw: before it)
            hw = torch.cat([hw[:, :, :, :1], torch.zeros_like(hw[:, :, :, 1:])], 3)
        # vertical: output row i sees input rows i-1 and i; it reaches the horizontal stack shifted down one row, so
        # what a position sees from it is the rows above it
        v_full = self.vertical(v)[:, :, :rows]
        v_shift = F.pad(v_full, (0, 0, 1, 0))[:, :, :rows]
        h_full = F.conv2d(h, hw, self.horizontal.bias, padding=(0, 1))[:, :, :, :cols]  # columns j-1, j
        v_out = self.gate(v_full)
        h_out = self.out(self.gate(h_full + self.v_to_h(v_shift)))
        return v_out, (h if not self.first else 0) + h_out


class PixelCNNPrior(nn.Module):
    """p(codes) = Π p(code_ij | codes before ij in raster order), K-way softmax at each position."""

    def __init__(self, codes: int, channels: int = PRIOR_CHANNELS, layers: int = PRIOR_LAYERS):
        super().__init__()
        self.codes = codes
        self.embed = nn.Embedding(codes, channels)
        self.layers = nn.ModuleList(MaskedGatedLayer(channels, first=i == 0) for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, codes, 1))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Code indices (N, h, w) -> logits (N, K, h, w) of each position given the ones before it."""
        x = self.embed(idx).permute(0, 3, 1, 2)
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def nll(self, idx: torch.Tensor) -> torch.Tensor:
        """−log p(codes) per image, in nats."""
        logits = self.forward(idx).float()
        return F.cross_entropy(logits, idx, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, shape: tuple[int, int], generator=None, temperature: float = 1.0, device=None):
        """n code maps drawn position by position (each pass runs on the rows so far), logits divided by T."""
        rows, cols = shape
        idx = torch.zeros(n, rows, cols, dtype=torch.long, device=device)
        where = generator.device if generator is not None else torch.device("cpu")
        for i in range(rows):
            for j in range(cols):
                logits = self.forward(idx[:, : i + 1])[:, :, i, j].float() / max(temperature, 1e-3)
                probs = torch.softmax(logits, 1).to(where)
                idx[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(idx.device)
        return idx


class VQVAE(LatentModel):
    """Encoder to an 8x8 map (for 64x64 images), the EMA quantiser, the decoder, and the PixelCNN prior (`prior`,
    trained by its own optimiser in the run's second stage)."""

    latent_kind = "codes"
    aux_name = "prior"

    def __init__(self, image_size=(64, 64), hidden: int = 32, dim: int = 32, codes: int = 512):
        super().__init__()
        h, w = image_size
        self.image_size = (h, w)
        self.sizes = list(zip(encoder_sizes(h), encoder_sizes(w)))
        c = hidden
        self.encoder = nn.Sequential(
            convgrad.Conv2d(3, c, 3, stride=2, padding=1), ResBlock(c),
            convgrad.Conv2d(c, 2 * c, 3, stride=2, padding=1), ResBlock(2 * c),
            convgrad.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), ResBlock(2 * c),
            nn.BatchNorm2d(2 * c), nn.SiLU(), convgrad.Conv2d(2 * c, dim, 1),
        )
        self.map_shape = (dim, *self.sizes[3])
        self.quantiser = Quantiser(codes, dim)
        self.from_codes = nn.Sequential(convgrad.Conv2d(dim, 2 * c, 3, padding=1), ResBlock(2 * c))
        self.up = nn.ModuleList([
            nn.Sequential(ResBlock(2 * c), convgrad.Conv2d(2 * c, 2 * c, 3, padding=1)),
            nn.Sequential(ResBlock(2 * c), convgrad.Conv2d(2 * c, c, 3, padding=1)),
        ])
        self.head = nn.Sequential(ResBlock(c), nn.BatchNorm2d(c), nn.SiLU())
        self.to_pixels = convgrad.Conv2d(c, 3, 3, padding=1)
        self.prior = PixelCNNPrior(codes)
        self.latent = math.prod(self.map_shape)

    @classmethod
    def from_config(cls, config) -> "VQVAE":
        m = config.model
        return cls(image_size=config.data.size, hidden=m.hidden, dim=m.latent, codes=m.codebook_size)

    # ------------------------------------------------------------------ pieces
    def _decode_map(self, z_q):
        h = self.from_codes(z_q)
        for block, size in zip(self.up, (self.sizes[2], self.sizes[1])):
            h = F.interpolate(block(h), size=size, mode="nearest")
        h = F.interpolate(self.head(h), size=self.sizes[0], mode="nearest")
        return self.to_pixels(h)

    def codes_of(self, z: torch.Tensor) -> torch.Tensor:
        """Flattened maps (N, latent) -> the nearest codes' indices (N, h, w)."""
        n = z.shape[0]
        flat = z.float().view(n, *self.map_shape).permute(0, 2, 3, 1).reshape(-1, self.map_shape[0])
        return self.quantiser.nearest(flat).view(n, *self.map_shape[1:])

    # ------------------------------------------------------------------ the protocol
    def forward(self, x, generator=None, samples: int = 1) -> ModelOutput:
        z_e = self.encoder(x)
        z_st, idx, commitment, perplexity, usage = self.quantiser(z_e, generator)
        flat = z_st.flatten(1)
        return ModelOutput(self._decode_map(z_st), flat, torch.full_like(flat, POINT_LOGVAR), flat,
                           {"codes": idx, "commitment": commitment, "perplexity": perplexity, "usage": usage})

    def encode(self, x):
        """The quantised map (flattened) as the posterior's mean, a point (log-variance POINT_LOGVAR)."""
        z_e = self.encoder(x)
        flat = self.quantiser.lookup(self.codes_of(z_e.flatten(1))).flatten(1)
        return flat, torch.full_like(flat, POINT_LOGVAR)

    def decode_logits(self, z):
        return self._decode_map(z.view(-1, *self.map_shape).to(self.to_pixels.weight.dtype))

    def log_prior(self, z):
        """log p(codes) under the PixelCNN, of the codes nearest to z."""
        return -self.prior.nll(self.codes_of(z))

    def kl(self, mu, logvar=None, z=None):
        """A point posterior: KL = −log p(codes) (the rate term of the bound), in nats per image."""
        return self.prior.nll(self.codes_of(mu))

    def prior_sample(self, n, generator=None, temperature: float = 1.0):
        """Code maps drawn from the PixelCNN (logits / T), looked up: flattened quantised maps."""
        idx = self.prior.sample(n, self.map_shape[1:], generator, temperature, device=model_device(self))
        return self.quantiser.lookup(idx).flatten(1)

    def aux_loss(self, out: ModelOutput, generator=None) -> torch.Tensor:
        """The prior's loss: its mean NLL per image of this batch's codes (each image's NLL is left in
        out.extra["prior_nll"]: the rate the objective reports once the prior trains)."""
        nll = self.prior.nll(out.extra["codes"])
        out.extra["prior_nll"] = nll.detach()
        return nll.mean()
