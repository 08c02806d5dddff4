"""Run settings: frozen dataclasses, named presets, JSON/TOML round-trip and validation.

**The one list of settings.** Every field of ModelConfig, DataConfig and TrainConfig is
declared once, with its help text, type, range or choices, whether a resumed run may
change it, and its label in the new-run form. From that list come the command-line
flags of `vaetui train` (and sweeps), the form's fields, the TOML/JSON keys, the
validation and the resume rule: nothing types them again.

A `RunConfig` is built from a preset plus overrides (from the form, a config file or the
command line) and validated once.
"""

from __future__ import annotations

import dataclasses
import difflib
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
MIN_SIDE, MAX_SIDE = 16, 1024


def _setting(default: Any, help: str, *, name: str | None = None, kind: Any = None, choices: tuple = (),
             low: float | None = None, high: float | None = None, low_open: bool = False, resume: bool = False,
             form: str | None = None, metavar: str | None = None) -> Any:
    """A dataclass field that is also a user-facing setting (see Setting)."""
    meta = {"name": name, "kind": kind if kind is not None else type(default), "help": help, "choices": choices,
            "low": low, "high": high, "low_open": low_open, "resume": resume, "form": form, "metavar": metavar}
    return field(default=default, metadata={"setting": meta})


@dataclass(frozen=True)
class Setting:
    """One user-facing setting: its flat name is the CLI flag (--name-with-dashes), TOML key and override key."""

    name: str
    section: str
    field: str
    kind: Any  # int, float, str, bool, or "size"
    help: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    resume: bool = False  # a resumed run may change it
    form: str | None = None  # label in the new-run form
    metavar: str | None = None
    optional: bool = False  # None means "not set"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        return f"{self.section}.{self.field}"

    def parse(self, text: str) -> Any:
        """A value typed by a person (form, flag) -> this setting's type; ConfigError names what is wanted."""
        text = text.strip()
        if text == "" and self.optional:
            return None
        try:
            if self.kind == "size":
                return parse_size(text)
            if self.kind is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return self.kind(text)
        except ConfigError:
            raise
        except ValueError:
            what = {int: "an integer", float: "a number", bool: "true or false"}.get(self.kind, "a value")
            raise ConfigError(self.key, f"must be {what}, got {text!r}") from None

    def check(self, value: Any) -> None:
        """Raise ConfigError naming this setting when value is out of its type, range or choices."""
        if value is None and self.optional:
            return
        if self.choices:
            _check_choice(self.key, value, self.choices)
        elif self.kind is int:
            _check_int(self.key, value, int(self.low if self.low is not None else -(2**63)),
                       int(self.high if self.high is not None else 2**63))
        elif self.kind is float:
            _check_float(self.key, value, self.low if self.low is not None else -math.inf,
                         self.high if self.high is not None else math.inf, self.low_open)
        elif self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(self.key, f"must be true or false, got {value!r}")
        elif self.kind == "size":
            if not (isinstance(value, tuple) and len(value) == 2):
                raise ConfigError(self.key, f"must be HxW, got {value!r}")
            for side in value:
                _check_int(self.key, side, MIN_SIDE, MAX_SIDE)
        elif self.kind is str and not isinstance(value, str):
            raise ConfigError(self.key, f"must be text, got {value!r}")

    def describe(self) -> str:
        """The allowed values, for help texts: 'one of a, b' or 'in [lo, hi]'."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.low is None:
            return ""
        if self.high is None or (self.kind is int and self.high >= 10**6):
            return f"{'>' if self.low_open else '≥'} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"


def _validate_fields(obj: Any, section: str) -> None:
    for s in SETTINGS_BY_SECTION[section]:
        s.check(getattr(obj, s.field))


@dataclass(frozen=True)
class ModelConfig:
    """The network: hidden channels c (encoder c, 2c, 4c, 8c), latent size, likelihood."""

    hidden: int = _setting(32, "hidden channels c (encoder c, 2c, 4c, 8c)", low=1, high=1024)
    latent: int = _setting(100, "latent size", low=1, high=4096, form="latent size")
    likelihood: str = _setting("bernoulli", "decoder likelihood", choices=LIKELIHOODS)
    init: str = _setting("kaiming", "weight initialisation (default: PyTorch's own)", choices=INITS)

    def validate(self) -> None:
        _validate_fields(self, "model")


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and the geometry they are brought to."""

    source: str = _setting("synthetic", "image source (synthetic faces need no download)", name="data",
                           choices=DATA_SOURCES, form="data")
    root: str | None = _setting(None, "dataset folder for --data celeba|folder", name="data_root", kind=str,
                                form="data root", metavar="PATH")
    size: tuple[int, int] = _setting((64, 64), "image size HxW, e.g. 64 or 218x178", kind="size",
                                     form="image size", metavar="HxW")
    geometry: str = _setting("native", "native: resize the whole image; crop: CelebA-64 protocol (centre 148x148)",
                             choices=GEOMETRIES)
    dataset_size: int | None = _setting(None, "training images per epoch, the first N (the seed: 30000)", kind=int,
                                        low=1, high=10**9, form="images per epoch")
    seed: int = _setting(0, "seed of the synthetic faces", name="data_seed", low=0, high=2**31 - 1)

    def validate(self) -> None:
        _validate_fields(self, "data")
        if self.source != "synthetic" and not self.root:
            raise ConfigError("data.root", f"--data-root is required for --data {self.source}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping: β, warm-up, Adam, schedule, device, checkpoints."""

    beta: float = _setting(0.3, "β, the weight of the KL term", low=0.0, high=1e4, form="β")
    kl_warmup: int = _setting(0, "linear KL warm-up over this many steps (0: none)", low=0, high=10**9,
                              form="KL warm-up steps", metavar="STEPS")
    lr: float = _setting(1e-4, "Adam's learning rate", low=1e-8, high=1.0, low_open=True, form="learning rate")
    batch_size: int = _setting(64, "images per step (the global batch under torchrun)", low=1, high=65536,
                               form="batch size")
    epochs: int = _setting(50, "epochs to train", low=1, high=100000, resume=True, form="epochs")
    max_steps: int | None = _setting(None, "stop after this many steps in all", kind=int, low=1, high=10**12,
                                     resume=True)
    seed: int = _setting(0, "seed of initialisation, data order and noise", low=0, high=2**31 - 1, form="seed")
    device: str = _setting("auto", "where to train", choices=DEVICES, resume=True)
    precision: str = _setting("fp32", "fp32, or bf16/fp16 autocast (fp16 on CUDA only)", choices=PRECISIONS,
                              resume=True, form="precision")
    threads: int | None = _setting(None, "torch threads (default: all cores)", kind=int, low=1, high=1024,
                                   resume=True, form="threads")
    compile: bool = _setting(False, "torch.compile the model", resume=True)
    image_every: int = _setting(200, "image snapshot every N steps", low=1, high=10**9, resume=True,
                                metavar="STEPS")
    log_every: int = _setting(10, "step event every N steps", low=1, high=10**9, resume=True, metavar="STEPS")
    checkpoint_every: int = _setting(500, "ckpt-latest every N steps", low=1, high=10**9, resume=True,
                                     metavar="STEPS")
    keep_last: int = _setting(3, "epoch checkpoints to keep", low=1, high=10**9, resume=True, metavar="K")
    valid_size: int = _setting(512, "validation images evaluated each epoch", low=1, high=10**9)

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
FORM_FIELDS = ("data", "precision", "data_root", "size", "latent", "beta", "kl_warmup", "lr", "batch_size", "epochs",
               "dataset_size", "seed", "threads")
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


def parse_size(value: Any) -> tuple[int, int]:
    """'64', '218x178', [218, 178] or 64 -> (H, W)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        h, w = value
    elif isinstance(value, int) and not isinstance(value, bool):
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
    if not (isinstance(h, int) and isinstance(w, int)) or isinstance(h, bool) or isinstance(w, bool):
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
    if not low <= value <= high or (low_open and value <= low):
        raise ConfigError(name, f"must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value:g}")


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


def with_overrides(base: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Apply flat overrides (None means 'not given')."""
    changes: dict[str, dict[str, Any]] = {sec: {} for sec in SECTIONS}
    for key, value in overrides.items():
        if value is None:
            continue
        s = setting(key)
        if s.kind == "size":
            value = parse_size(value)
        elif s.kind is str and s.field == "root":
            value = str(value)
        changes[s.section][s.field] = value
    new = {sec: replace(getattr(base, sec), **v) if v else getattr(base, sec) for sec, v in changes.items()}
    return replace(base, **new)


def resume_changes(current: RunConfig, given: dict[str, Any]) -> list[str]:
    """Flags among `given` that would change what a resumed run keeps (model, data, optimiser): refused."""
    return sorted(setting(k).flag for k, v in given.items()
                  if v is not None and not setting(k).resume and with_overrides(current, {k: v}) != current)


def _toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON file of settings, nested (model/data/train) or flat, as flat overrides.

    Every key is checked: an unknown or misplaced one is a ConfigError that names it (and
    the closest known name).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"no such file: {path}")
    try:
        text = path.read_text()
        data = _toml(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except Exception as exc:  # tomllib and json raise different types
        raise ConfigError("config", f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a table of settings")
    return flatten_settings(data, str(path))


def flatten_settings(data: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Nested {section: {field: v}} and/or flat {name: v} settings -> flat overrides, every key checked."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            for sub, subval in value.items():
                s = SETTINGS_BY_KEY.get(f"{key}.{sub}")
                if s is None:
                    alt = SETTINGS_BY_NAME.get(sub)
                    hint = (f" ({sub} belongs in [{alt.section}])" if alt else
                            _did_you_mean(sub, [x.field for x in SETTINGS_BY_SECTION[key]]))
                    raise ConfigError(f"{key}.{sub}", f"unknown setting in {where}" + hint)
                flat[s.name] = subval
        elif key == "preset":
            flat["preset"] = value
        else:
            flat[setting(key).name] = value
    return flat
