"""The named presets: the seed's network and protocol exactly (seed, seed-l3), the default (faces64), the families
with networks of their own at 64x64 (hvae64, vqvae64), and tiny."""

from __future__ import annotations

from dataclasses import replace

from vaetui.config.settings import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaetui.errors import ConfigError

DEFAULT_PRESET = "faces64"  # what a new run starts from when nothing names a preset

# The assignment exactly: CelebA 218x178, hidden 32, latent 100, BCE-sum, beta 0.3,
# Adam 1e-4, batch 64, 50 epochs of 30,000 images.
_SEED = RunConfig(
    preset="seed",
    model=ModelConfig(hidden=32, latent=100, likelihood="bernoulli"),
    data=DataConfig(source="celeba", root=None, size=(218, 178), geometry="native", dataset_size=30000),
    train=TrainConfig(beta=0.3, lr=1e-4, batch_size=64, epochs=50, image_every=100),
)

PRESETS: dict[str, RunConfig] = {
    "seed": _SEED,
    "seed-l3": replace(_SEED, preset="seed-l3", model=replace(_SEED.model, latent=3)),
    # The embedded default. On 2 CPU cores the 64x64 net runs at a few hundred
    # images/s, so lr 1e-3 and beta 1 give recognisable faces within ~5 minutes.
    "faces64": RunConfig(
        preset="faces64",
        model=ModelConfig(hidden=32, latent=32, likelihood="bernoulli"),
        data=DataConfig(source="synthetic", size=(64, 64), dataset_size=20000),
        train=TrainConfig(beta=1.0, lr=1e-3, batch_size=64, epochs=10, image_every=50, checkpoint_every=200),
    ),
    "tiny": RunConfig(
        preset="tiny",
        model=ModelConfig(hidden=8, latent=8, likelihood="bernoulli"),
        data=DataConfig(source="synthetic", size=(32, 32), dataset_size=256),
        train=TrainConfig(
            beta=1.0, lr=1e-3, batch_size=32, epochs=2, image_every=4, log_every=1,
            checkpoint_every=8, valid_size=64,
        ),
    ),
    # The families that bring a network of their own, on faces64's data and schedule.
    "hvae64": RunConfig(
        preset="hvae64",
        model=ModelConfig(family="hvae", hidden=32, latent=32, likelihood="bernoulli"),
        data=DataConfig(source="synthetic", size=(64, 64), dataset_size=20000),
        train=TrainConfig(beta=1.0, lr=1e-3, batch_size=64, epochs=10, image_every=50, checkpoint_every=200),
    ),
    "vqvae64": RunConfig(
        preset="vqvae64",
        model=ModelConfig(family="vqvae", hidden=32, latent=32, likelihood="bernoulli", codebook_size=512),
        data=DataConfig(source="synthetic", size=(64, 64), dataset_size=20000),
        train=TrainConfig(beta=1.0, lr=1e-3, batch_size=64, epochs=10, image_every=50, checkpoint_every=200),
    ),
}


def preset(name: str) -> RunConfig:
    """The named preset; ConfigError lists the names when it is unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError("preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
