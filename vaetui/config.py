"""Run settings: frozen dataclasses, named presets, JSON round-trip and validation.

One source of truth for every default. A `RunConfig` is built from a preset plus
overrides (from the form, a config file or the command line) and validated once.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vaetui.errors import ConfigError

DATA_SOURCES = ("synthetic", "celeba", "folder")
GEOMETRIES = ("native", "crop")  # native: resize whole image; crop: CelebA-64 protocol
LIKELIHOODS = ("bernoulli", "gaussian")
INITS = ("kaiming", "default")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")
MIN_SIDE = 16


@dataclass(frozen=True)
class ModelConfig:
    """The network: hidden channels c (encoder c, 2c, 4c, 8c), latent size, likelihood."""

    hidden: int = 32
    latent: int = 100
    likelihood: str = "bernoulli"
    init: str = "kaiming"

    def validate(self) -> None:
        _check_int("model.hidden", self.hidden, 1, 1024)
        _check_int("model.latent", self.latent, 1, 4096)
        _check_choice("model.likelihood", self.likelihood, LIKELIHOODS)
        _check_choice("model.init", self.init, INITS)


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and the geometry they are brought to."""

    source: str = "synthetic"
    root: str | None = None
    size: tuple[int, int] = (64, 64)
    geometry: str = "native"
    dataset_size: int | None = None
    seed: int = 0

    def validate(self) -> None:
        _check_choice("data.source", self.source, DATA_SOURCES)
        _check_choice("data.geometry", self.geometry, GEOMETRIES)
        if not (isinstance(self.size, tuple) and len(self.size) == 2):
            raise ConfigError("data.size", f"must be HxW, got {self.size!r}")
        for side in self.size:
            _check_int("data.size", side, MIN_SIDE, 1024)
        if self.source != "synthetic" and not self.root:
            raise ConfigError("data.root", f"--data-root is required for --data {self.source}")
        if self.dataset_size is not None:
            _check_int("data.dataset_size", self.dataset_size, 1, 10**9)
        _check_int("data.seed", self.seed, 0, 2**31 - 1)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping: β, warm-up, Adam, schedule, device, checkpoints."""

    beta: float = 0.3
    kl_warmup: int = 0
    lr: float = 1e-4
    batch_size: int = 64
    epochs: int = 50
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None
    compile: bool = False
    image_every: int = 200
    log_every: int = 10
    checkpoint_every: int = 500
    keep_last: int = 3
    valid_size: int = 512

    def validate(self) -> None:
        _check_float("train.beta", self.beta, 0.0, 1e4)
        _check_int("train.kl_warmup", self.kl_warmup, 0, 10**9)
        _check_float("train.lr", self.lr, 1e-8, 1.0, low_open=True)
        _check_int("train.batch_size", self.batch_size, 1, 65536)
        _check_int("train.epochs", self.epochs, 1, 100000)
        if self.max_steps is not None:
            _check_int("train.max_steps", self.max_steps, 1, 10**12)
        _check_int("train.seed", self.seed, 0, 2**31 - 1)
        _check_choice("train.device", self.device, DEVICES)
        _check_choice("train.precision", self.precision, PRECISIONS)
        if self.threads is not None:
            _check_int("train.threads", self.threads, 1, 1024)
        for name in ("image_every", "log_every", "checkpoint_every", "keep_last", "valid_size"):
            _check_int(f"train.{name}", getattr(self, name), 1, 10**9)


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
        data = dict(data)
        sections = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _section_from_dict(key, sections[key], value)
            elif key == "preset":
                kwargs[key] = str(value)
            else:
                raise ConfigError(key, f"unknown setting; allowed: preset, {', '.join(sections)}")
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


def _section_from_dict(name: str, cls: type, value: Any) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table of settings")
    allowed = {f.name for f in fields(cls)}
    for key in value:
        if key not in allowed:
            raise ConfigError(f"{name}.{key}", f"unknown setting; allowed: {', '.join(sorted(allowed))}")
    value = dict(value)
    if "size" in value:
        value["size"] = parse_size(value["size"])
    return cls(**value)


def parse_size(value: Any) -> tuple[int, int]:
    """'64', '218x178', [218, 178] or 64 -> (H, W)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        h, w = value
    elif isinstance(value, int):
        h = w = value
    elif isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ConfigError("data.size", f"must be HxW like 218x178 or 64, got {value!r}")
        h, w = int(parts[0]), int(parts[1])
    else:
        raise ConfigError("data.size", f"must be HxW like 218x178 or 64, got {value!r}")
    if not (isinstance(h, int) and isinstance(w, int)):
        raise ConfigError("data.size", f"must be two integers, got {value!r}")
    return (h, w)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ConfigError(name, f"must be in [{low}, {high}], got {value}")


def _check_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, f"must be a number in [{low:g}, {high:g}], got {value!r}")
    if not low <= value <= high or (low_open and value <= 0):
        raise ConfigError(name, f"must be in [{low:g}, {high:g}], got {value:g}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


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
}


def preset(name: str) -> RunConfig:
    """The named preset; ConfigError lists the names when it is unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError("preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


# Flat override names (as on the command line) -> (section, field).
OVERRIDES: dict[str, tuple[str, str]] = {
    "data": ("data", "source"),
    "data_root": ("data", "root"),
    "size": ("data", "size"),
    "geometry": ("data", "geometry"),
    "dataset_size": ("data", "dataset_size"),
    "hidden": ("model", "hidden"),
    "latent": ("model", "latent"),
    "likelihood": ("model", "likelihood"),
    "init": ("model", "init"),
    **{f.name: ("train", f.name) for f in fields(TrainConfig)},
}


def with_overrides(base: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Apply flat overrides (None means 'not given'); the seed also seeds the data split."""
    sections = {"model": base.model, "data": base.data, "train": base.train}
    changes: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "train": {}}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in OVERRIDES:
            raise ConfigError(key, f"unknown setting; allowed: {', '.join(sorted(OVERRIDES))}")
        section, name = OVERRIDES[key]
        if name == "size":
            value = parse_size(value)
        if name == "root":
            value = str(value)
        changes[section][name] = value
    new = {k: replace(sections[k], **v) if v else sections[k] for k, v in changes.items()}
    return replace(base, **new)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON file of settings, nested (model/data/train) or flat, as flat overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"no such file: {path}")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # tomllib and json raise different types
        raise ConfigError("config", f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a table of settings")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("model", "data", "train") and isinstance(value, dict):
            for sub, subval in value.items():
                flat_key = {("data", "source"): "data", ("data", "root"): "data_root"}.get((key, sub), sub)
                flat[flat_key] = subval
        else:
            flat[key.replace("-", "_")] = value
    return flat
