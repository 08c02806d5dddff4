"""ConvVAE: the seed's convolutional β-VAE, with its shapes computed from the image size."""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch
from torch import nn

from vaetui.models import convgrad
from vaetui.models.protocol import LatentModel
from vaetui.config.settings import ModelConfig, RunConfig
from vaetui.errors import ConfigError

DEPTH = 4  # four stride-2 blocks each way, as in the seed


def encoder_sizes(side: int) -> list[int]:
    """Side lengths after each encoder block (Conv 3x3, stride 2, pad 1), input first."""
    sizes = [side]
    for _ in range(DEPTH):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def _side_candidates(side: int) -> list[tuple[tuple[int, ...], int, tuple[int, ...], int]]:
    """Decoder paddings for one axis that end at exactly `side`, with their deviation.

    A ConvTranspose 4x4 stride 2 maps n to 2n + 2 - 2p (+ output_padding). We try p in
    {0, 1, 2} per block and an output padding on the last block (only odd sides need it),
    and keep the choices whose intermediate sizes stay closest to the mirrored encoder's.
    """
    enc = encoder_sizes(side)
    mirror = enc[DEPTH - 1 : 0 : -1]  # e.g. 218: [28, 55, 109]
    found = []
    for pads in itertools.product((0, 1, 2), repeat=DEPTH):
        for out_pad in (0, 1):
            n, sizes = enc[DEPTH], []
            for i, p in enumerate(pads):
                n = 2 * n + 2 - 2 * p + (out_pad if i == DEPTH - 1 else 0)
                sizes.append(n)
            if sizes[-1] == side and min(sizes) > 0:
                deviation = sum(abs(a - b) for a, b in zip(sizes[:-1], mirror))
                found.append((pads, out_pad, tuple(sizes), deviation))
    best = min(c[3] for c in found)
    return [c for c in found if c[3] == best]


@lru_cache(maxsize=None)
def decoder_paddings(height: int, width: int) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Per-block (ph, pw) paddings and the last block's output padding for an H x W image.

    Rule: per axis, intermediate sizes closest to the mirrored encoder's; then as many
    square (ph == pw) paddings as possible; then the least total padding (least cropping).
    For 218x178 this gives the seed's hand-picked (1,1), (2,2), (0,2), (2,2).
    """
    if height < 16 or width < 16:
        raise ConfigError("data.size", f"each side must be at least 16 pixels, got {height}x{width}")
    best_key, best = None, None
    for ch, cw in itertools.product(_side_candidates(height), _side_candidates(width)):
        squares = sum(a == b for a, b in zip(ch[0], cw[0]))
        key = (-squares, sum(ch[0]) + sum(cw[0]) + ch[1] + cw[1], ch[0], cw[0])
        if best_key is None or key < best_key:
            best_key, best = key, (ch, cw)
    ch, cw = best
    return [(a, b) for a, b in zip(ch[0], cw[0])], (ch[1], cw[1])


class ConvVAE(LatentModel):
    """Encoder 4 x [Conv3x3/2, BN, ReLU] (c..8c) -> mu, logvar; decoder Linear -> 4 x [ConvT4x4/2, BN, LeakyReLU] -> Conv3x3."""

    def __init__(self, image_size: tuple[int, int] = (64, 64), hidden: int = 32, latent: int = 100,
                 channels: int = 3, init: str = "kaiming"):
        super().__init__()
        height, width = image_size
        pads, out_pads = decoder_paddings(height, width)
        self.image_size = (height, width)
        self.latent = latent
        self.hidden = hidden
        c = hidden
        enc_ch = [channels, c, 2 * c, 4 * c, 8 * c]
        self.encoder = nn.Sequential(
            *(
                convgrad.NormBlock(
                    convgrad.Conv2d(enc_ch[i], enc_ch[i + 1], kernel_size=3, stride=2, padding=1),
                    nn.BatchNorm2d(enc_ch[i + 1]),
                    nn.ReLU(),
                )
                for i in range(DEPTH)
            )
        )
        self.bottleneck = (8 * c, encoder_sizes(height)[DEPTH], encoder_sizes(width)[DEPTH])
        flat = math.prod(self.bottleneck)
        self.fc_mu = nn.Linear(flat, latent)
        self.fc_logvar = nn.Linear(flat, latent)
        self.fc_dec = nn.Linear(latent, flat)
        dec_ch = [8 * c, 4 * c, 2 * c, c, c]
        blocks = []
        for i in range(DEPTH):
            blocks.append(
                convgrad.NormBlock(
                    convgrad.ConvTranspose2d(
                        dec_ch[i], dec_ch[i + 1], kernel_size=4, stride=2, padding=pads[i],
                        output_padding=out_pads if i == DEPTH - 1 else 0,
                    ),
                    nn.BatchNorm2d(dec_ch[i + 1]),
                    nn.LeakyReLU(),
                )
            )
        self.decoder = nn.Sequential(*blocks, convgrad.Conv2d(c, channels, kernel_size=3, stride=1, padding=1))
        self.reset_parameters(init)

    @classmethod
    def from_config(cls, config: RunConfig | ModelConfig, image_size: tuple[int, int] | None = None) -> "ConvVAE":
        """Build the network a run config describes."""
        if isinstance(config, RunConfig):
            image_size, config = config.data.size, config.model
        if image_size is None:
            raise ConfigError("data.size", "an image size is needed to build the model")
        return cls(image_size=image_size, hidden=config.hidden, latent=config.latent, init=config.init)

    def reset_parameters(self, init: str = "kaiming") -> None:
        """Initialise weights; the seed's weight_init looped over the wrong modules and did nothing.

        'kaiming': He-normal (fan-in) for convolutions with the gain of the activation
        that follows, zero biases, BatchNorm at (1, 0), small-normal heads so training
        starts at the prior. 'default': PyTorch's own initialisation.
        """
        if init == "default":
            return
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                leaky = module in [m for b in self.decoder[:DEPTH] for m in b]
                nn.init.kaiming_normal_(
                    module.weight, a=0.01 if leaky else 0.0, mode="fan_in",
                    nonlinearity="leaky_relu" if leaky else "relu",
                )
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for head in (self.fc_mu, self.fc_logvar):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)
        nn.init.kaiming_normal_(self.fc_dec.weight, nonlinearity="linear")
        nn.init.zeros_(self.fc_dec.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1], (N, 3, H, W) -> posterior mean and log-variance, (N, latent) each."""
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes -> per-pixel Bernoulli logits (or Gaussian means before sigmoid)."""
        h = self.fc_dec(z).view(-1, *self.bottleneck)
        return self.decoder(h)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_table(model) -> list[tuple[str, str, tuple[int, ...], int]]:
    """(name, layer, output shape, parameters) for every leaf layer, traced with one image."""
    rows: list[tuple[str, str, tuple[int, ...], int]] = []
    seen: set[str] = set()
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod, _inp, out, name=name):
                if name not in seen:  # a layer used twice (a hierarchical model's top-down path) is one row
                    seen.add(name)
                    rows.append((name, _describe(mod), tuple(out.shape[1:]), sum(p.numel() for p in mod.parameters())))
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            mu, logvar = model.encode(torch.zeros(1, 3, *model.image_size))
            model.decode_logits(mu)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows


def _describe(module: nn.Module) -> str:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        kind = "ConvTranspose2d" if isinstance(module, nn.ConvTranspose2d) else "Conv2d"
        extra = f", out_pad={module.output_padding}" if isinstance(module, nn.ConvTranspose2d) and any(module.output_padding) else ""
        return (f"{kind}({module.in_channels}->{module.out_channels}, k={module.kernel_size[0]}, "
                f"s={module.stride[0]}, pad={module.padding}{extra})")
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features}->{module.out_features})"
    if isinstance(module, nn.BatchNorm2d):
        return f"BatchNorm2d({module.num_features})"
    return type(module).__name__
