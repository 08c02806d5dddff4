"""Run settings: frozen dataclasses, their JSON round-trip and validation.

**The one list of settings.** Every field of ModelConfig, DataConfig and TrainConfig is
declared once, with its help text, type, range or choices, whether a resumed run may
change it, and its label in the new-run form. From that list come the command-line
flags of `vaetui train` (and sweeps), the form's fields, the TOML/JSON keys, the
validation and the resume rule: nothing types them again.

A `RunConfig` is built from a preset (vaetui.config.presets) plus overrides (from the form, a
config file, the command line or a study) by vaetui.config.resolve, and validated once.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from vaetui.errors import ConfigError
from vaetui.config.fields import Setting, parse_size, setting_field

DATA_SOURCES = ("synthetic", "celeba", "folder")
GEOMETRIES = ("native", "crop")  # native: resize whole image; crop: CelebA-64 protocol
LIKELIHOODS = ("bernoulli", "gaussian")
INITS = ("kaiming", "default")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The VAE families (vaetui.models.families holds each one's objective; a test keeps the two lists equal).
MODELS = ("vae", "iwae", "beta-tcvae", "factorvae", "vamp", "hvae", "vqvae")
# The settings each family alone reads (the new-run form shows them for that family only; the others ignore them).
FAMILY_SETTINGS = {"vae": ("free_bits",), "iwae": ("iw_samples",), "beta-tcvae": ("alpha", "gamma"),
                   "factorvae": ("gamma",), "vamp": ("pseudo_inputs",), "hvae": (),
                   "vqvae": ("codebook_size", "commitment", "prior_fraction")}
CONV_FAMILIES = ("vae", "iwae", "beta-tcvae", "factorvae", "vamp")  # on the seed's ConvVAE (any preset)
SOME_FAMILIES_SETTINGS = frozenset(name for names in FAMILY_SETTINGS.values() for name in names)
# Where generated faces' codes come from (vaetui.models.samplers draws them); named here, where flags are made
# without torch.
SAMPLERS = ("prior", "gmm", "vamp")
SAMPLER_NAMES = {"prior": "the prior", "gmm": "the ex-post GMM of the training codes",
                 "vamp": "the VampPrior (its pseudo-inputs' posteriors)"}
SAMPLER_SHORT = {"prior": "prior", "gmm": "GMM", "vamp": "VampPrior"}


USER_MODEL = "path/to/file.py:ClassName, or an installed model's name (entry points vaetui.models)"


def is_user_model(value: Any) -> bool:
    """A person's own model: 'file.py:ClassName', or the name of an entry point in the group vaetui.models (an
    installed package's). Only the form is checked here; vaetui.models.user loads it."""
    import re

    if not isinstance(value, str):
        return False
    if re.fullmatch(r".+\.py:[A-Za-z_]\w*", value):
        return True
    from importlib.metadata import entry_points

    return any(ep.name == value for ep in entry_points(group="vaetui.models"))


def model_label(family: str) -> str:
    """A family as a column shows it: its name, or a user's file reference's class name."""
    return family.rsplit(":", 1)[1] if ".py:" in family else family


def _validate_fields(obj: Any, section: str) -> None:
    for s in SETTINGS_BY_SECTION[section]:
        s.check(getattr(obj, s.field))


@dataclass(frozen=True)
class ModelConfig:
    """The family and its network: hidden channels c (encoder c, 2c, 4c, 8c), latent size, likelihood."""

    family: str = setting_field("vae", "the VAE family: vae (β-VAE; Higgins et al. 2017), iwae (importance-weighted "
                                "bound; Burda et al. 2016), beta-tcvae (total correlation; Chen et al. 2018), "
                                "factorvae (a total-correlation critic; Kim & Mnih 2018), vamp (VampPrior; Tomczak & "
                                "Welling 2018), hvae (two-level hierarchical VAE; LVAE/NVAE), vqvae (discrete codes and a PixelCNN "
                                "prior; van den Oord et al. 2017); or your own: file.py:ClassName (docs/models.md)", name="model",
                                choices=MODELS, form="model", beyond=is_user_model, beyond_text=USER_MODEL)

    hidden: int = setting_field(32, "hidden channels c (encoder c, 2c, 4c, 8c)", low=1, high=1024)
    latent: int = setting_field(100, "latent size", low=1, high=4096, form="latent size")
    likelihood: str = setting_field("bernoulli", "decoder likelihood", choices=LIKELIHOODS)
    init: str = setting_field("kaiming", "weight initialisation (default: PyTorch's own)", choices=INITS)
    pseudo_inputs: int = setting_field(32, "--model vamp: K, the learned pseudo-inputs whose posteriors make the "
                                       "prior", low=1, high=4096, form="pseudo-inputs", metavar="K")
    codebook_size: int = setting_field(512, "--model vqvae: K, the codebook's vectors (each of --latent numbers)",
                                       low=2, high=65536, form="codebook size", metavar="K")

    def validate(self) -> None:
        _validate_fields(self, "model")


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and the geometry they are brought to."""

    source: str = setting_field("synthetic", "image source (synthetic faces need no download)", name="data",
                           choices=DATA_SOURCES, form="data")
    root: str | None = setting_field(None, "dataset folder for --data celeba|folder", name="data_root", kind=str,
                                form="data root", metavar="PATH")
    size: tuple[int, int] = setting_field((64, 64), "image size HxW, e.g. 64 or 218x178", kind="size",
                                     form="image size", metavar="HxW")
    geometry: str = setting_field("native", "native: resize the whole image; crop: CelebA-64 protocol (centre 148x148)",
                             choices=GEOMETRIES)
    dataset_size: int | None = setting_field(None, "training images per epoch, the first N (the seed: 30000)", kind=int,
                                        low=1, high=10**9, form="images per epoch")
    seed: int = setting_field(0, "seed of the synthetic faces", name="data_seed", low=0, high=2**31 - 1)

    def validate(self) -> None:
        _validate_fields(self, "data")
        if self.source != "synthetic" and not self.root:
            raise ConfigError("data.root", f"--data-root is required for --data {self.source}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping: β, warm-up, Adam, schedule, device, checkpoints."""

    beta: float = setting_field(0.3, "β, the weight of the KL term", low=0.0, high=1e4, form="β")
    kl_warmup: int = setting_field(0, "linear KL warm-up over this many steps (0: none)", low=0, high=10**9,
                              form="KL warm-up steps", metavar="STEPS")
    kl_cycles: int = setting_field(0, "cyclical KL annealing: cycles over the planned steps (0: none; Fu et al. "
                                   "2019)", low=0, high=10**6, form="KL cycles", metavar="M")
    kl_ratio: float = setting_field(0.5, "fraction of each KL cycle spent raising β from 0 (then held)", low=0.0,
                                    high=1.0, low_open=True, metavar="R")
    free_bits: float = setting_field(0.0, "free bits: a KL floor per latent dimension in nats (0: none; Kingma et "
                                     "al. 2016)", low=0.0, high=100.0, form="free bits", metavar="NATS")
    iw_samples: int = setting_field(5, "--model iwae: importance samples K per image in the training bound",
                                    low=1, high=1000, metavar="K", form="IWAE samples K")
    alpha: float = setting_field(1.0, "--model beta-tcvae: α, the weight of the index-code mutual information (β "
                                 "weighs the total correlation)", low=0.0, high=1e4, form="α (mutual information)")
    gamma: float = setting_field(1.0, "--model beta-tcvae: γ, the weight of the dimension-wise KL; --model "
                                 "factorvae: γ, the weight of the critic's total correlation (the paper: 6-40)",
                                 low=0.0, high=1e4, form="γ")
    commitment: float = setting_field(0.25, "--model vqvae: the commitment loss's weight (the paper: 0.25)", low=0.0,
                                      high=1e4, form="commitment")
    prior_fraction: float = setting_field(0.3, "--model vqvae: the share of the planned steps (--epochs), at the end, "
                                          "that train the PixelCNN prior over the codes (the network is frozen then)", low=0.0,
                                          high=1.0, form="prior share", metavar="F")
    lr: float = setting_field(1e-4, "Adam's learning rate", low=1e-8, high=1.0, low_open=True, form="learning rate")
    batch_size: int = setting_field(64, "images per step (the global batch under torchrun)", low=1, high=65536,
                               form="batch size")
    epochs: int = setting_field(50, "epochs to train", low=1, high=100000, resume=True, form="epochs")
    max_steps: int | None = setting_field(None, "stop after this many steps in all", kind=int, low=1, high=10**12,
                                     resume=True)
    time_budget: float | None = setting_field(None, "stop after this many seconds of training in this session (a "
                                              "final validation, then a checkpoint: a comparison at equal time)",
                                              kind=float, low=1.0, high=1e9, resume=True, metavar="SECONDS")
    seed: int = setting_field(0, "seed of initialisation, data order and noise", low=0, high=2**31 - 1, form="seed")
    device: str = setting_field("auto", "where to train", choices=DEVICES, resume=True)
    precision: str = setting_field("auto", "auto: bf16 autocast where the device has native bf16, else fp32; or "
                                   "fp32, bf16, fp16 (CUDA only)", choices=PRECISIONS,
                              resume=True, form="precision")
    threads: int | None = setting_field(None, "torch threads (default: all cores)", kind=int, low=1, high=1024,
                                   resume=True, form="threads")
    compile: bool = setting_field(False, "torch.compile the model", resume=True)
    image_every: int = setting_field(200, "image snapshot every N steps", low=1, high=10**9, resume=True,
                                metavar="STEPS")
    log_every: int = setting_field(10, "step event every N steps", low=1, high=10**9, resume=True, metavar="STEPS")
    checkpoint_every: int = setting_field(500, "ckpt-latest every N steps", low=1, high=10**9, resume=True,
                                     metavar="STEPS")
    keep_last: int = setting_field(3, "epoch checkpoints to keep", low=1, high=10**9, resume=True, metavar="K")
    valid_size: int = setting_field(512, "validation images evaluated each epoch", low=1, high=10**9)

    def validate(self) -> None:
        _validate_fields(self, "train")


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _collect_settings() -> list[Setting]:
    out = []
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            meta = dict(f.metadata["setting"])
            name = meta.pop("name") or f.name
            out.append(Setting(name=name, section=section, field=f.name, optional=f.default is None, **meta))
    return out


SETTINGS: list[Setting] = _collect_settings()
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
SETTINGS_BY_SECTION: dict[str, list[Setting]] = {sec: [s for s in SETTINGS if s.section == sec] for sec in SECTIONS}
# Flat override names (as on the command line) -> (section, field).
OVERRIDES: dict[str, tuple[str, str]] = {s.name: (s.section, s.field) for s in SETTINGS}
# The new-run form, top to bottom: choices first, then typed fields.
FORM_FIELDS = ("model", "data", "precision", "data_root", "size", "latent", "beta", "kl_warmup", "kl_cycles", "free_bits",
               "iw_samples", "alpha", "gamma", "pseudo_inputs", "codebook_size", "commitment", "prior_fraction", "lr", "batch_size", "epochs", "dataset_size", "seed",
               "threads")
assert all(SETTINGS_BY_NAME[n].form for n in FORM_FIELDS)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; stored as the run's config.json."""

    preset: str = "faces64"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "RunConfig":
        """Check every field; raise ConfigError naming the first bad one. Returns self."""
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.data.dataset_size is not None and self.data.dataset_size < self.train.batch_size:
            raise ConfigError(
                "data.dataset_size",
                f"{self.data.dataset_size} is smaller than one batch ({self.train.batch_size}); "
                "raise it or lower --batch-size",
            )
        if self.model.family != "vae" and self.train.free_bits > 0:
            raise ConfigError("train.free_bits", f"free bits floor the β-VAE's KL term: use --model vae, or drop "
                              f"--free-bits for --model {self.model.family}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Pretty JSON text, as stored in a run's config.json."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Inverse of to_dict; unknown keys raise ConfigError."""
        kwargs: dict[str, Any] = {}
        for key, value in dict(data).items():
            if key in SECTIONS:
                kwargs[key] = _section_from_dict(key, value)
            elif key == "preset":
                kwargs[key] = str(value)
            else:
                raise ConfigError(key, f"unknown setting; allowed: preset, {', '.join(SECTIONS)}")
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        """Parse JSON text written by to_json."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError("config", "must be a JSON object")
        return cls.from_dict(data)

    @property
    def size(self) -> tuple[int, int]:
        """Image size (H, W) the model is built for."""
        return self.data.size

    def get(self, name: str) -> Any:
        """A setting's value by its flat name."""
        s = setting(name)
        return getattr(getattr(self, s.section), s.field)


def setting(name: str) -> Setting:
    """The setting with this flat name (or section.field key); ConfigError suggests the closest name."""
    s = SETTINGS_BY_NAME.get(name.replace("-", "_")) or SETTINGS_BY_KEY.get(name)
    if s is None:
        raise ConfigError(name, "unknown setting" + _did_you_mean(name.replace("-", "_"), SETTINGS_BY_NAME))
    return s


def _did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else f"; allowed: {', '.join(sorted(known))}"


def _section_from_dict(name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table of settings")
    allowed = {f.name for f in fields(SECTIONS[name])}
    for key in value:
        if key not in allowed:
            raise ConfigError(f"{name}.{key}", "unknown setting" + _did_you_mean(key, allowed))
    value = dict(value)
    if "size" in value:
        value["size"] = parse_size(value["size"])
    return SECTIONS[name](**value)
