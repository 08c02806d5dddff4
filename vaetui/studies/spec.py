"""Studies: a comparison as the unit of work, on Optuna (ask and tell, journal storage).

A study lives in <runs>/<study>/: study.json (the space, the shared settings, the metric,
the sampler and the pruner) and journal.log (Optuna's JournalStorage file: no server,
one file that several processes, or machines on a shared filesystem, can join). Its
trials are ordinary runs, <study>-t007, beside it. Nothing here imports Textual.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetui.config.settings import MODELS
from vaetui.errors import ConfigError

METRICS = {"valid-loss": "minimize", "elbo": "minimize", "psnr": "maximize"}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
# settings a trial may vary (the rest are how and where it runs, not what it is)
NOT_SWEPT = ("data", "data_root", "device", "threads", "compile", "image_every", "log_every", "checkpoint_every",
             "keep_last", "precision")

# Named studies: the assignment's comparisons on synthetic faces, each trial a few minutes on 2 cores.
QUICK = {"preset": "faces64", "epochs": 4, "dataset_size": 4000, "image_every": 100}
# The families compared at equal training time: each trains for FAMILY_SECONDS (its epochs never run out first),
# then is evaluated (EVALUATE); a GMM sampler's samples are measured too where the code is continuous.
FAMILY_SECONDS = 240.0
FAMILIES_STUDY = {"preset": "faces64", "epochs": 1000, "dataset_size": 20000, "image_every": 200,
                  "time_budget": FAMILY_SECONDS}
NAMED = {
    "latent": ({"latent": [3, 8, 16, 32, 100]}, QUICK),
    "beta": ({"beta": [0.1, 0.3, 1.0, 3.0, 10.0]}, QUICK),
    "families": ({"model": list(MODELS)}, FAMILIES_STUDY),
}
EVALUATED = ("families",)  # named studies whose trials are evaluated when they end (vaetui sweep --evaluate: any)
# What a trial's evaluation measures (on the test split), vaetui eval's protocol with fixed sizes.
TRIAL_EVAL = {"split": "test", "count": 1000, "k": 16, "seed": 0, "disentangle_n": 2000, "samples_n": 1000}


@dataclass(frozen=True)
class Param:
    """One swept setting: a list of values, or a range (log-uniform with log = true; integers for int settings)."""

    name: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    def suggest(self, trial) -> Any:
        from vaetui.config.settings import setting

        if self.values:
            return trial.suggest_categorical(self.name, list(self.values))
        if setting(self.name).kind is int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def to_json(self) -> dict:
        if self.values:
            return {"values": list(self.values)}
        return {"low": self.low, "high": self.high, "log": self.log}


def parse_param(name: str, spec: Any) -> Param:
    """A [sweep] entry: `beta = [0.1, 1]`, `lr = {low = 1e-5, high = 1e-3, log = true}`; checked against the setting."""
    from vaetui.config.settings import SETTINGS, setting

    known = [s.name for s in SETTINGS if s.name not in NOT_SWEPT]
    if name not in known:
        raise ConfigError("sweep", f"unknown parameter {name!r}: a study can vary {', '.join(known)}")
    s = setting(name)

    def check(value):
        try:
            value = s.parse(str(value)) if not isinstance(value, (int, float, bool)) or s.kind == "size" else value
            if s.kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            s.check(value)
        except ConfigError as exc:
            raise ConfigError("sweep", f"{name}: {exc.message}") from None
        return value

    if isinstance(spec, list):
        if not spec:
            raise ConfigError("sweep", f"{name}: an empty list of values")
        values = tuple(check(v) for v in spec)
        if len(set(map(repr, values))) != len(values):
            raise ConfigError("sweep", f"{name}: a value is listed twice")
        return Param(name, values=values)
    if isinstance(spec, dict):
        extra = set(spec) - {"low", "high", "log", "values"}
        if extra:
            raise ConfigError("sweep", f"{name}: unknown key {sorted(extra)[0]!r} (use low, high, log or values)")
        if "values" in spec:
            return parse_param(name, spec["values"])
        if s.kind not in (int, float) or "low" not in spec or "high" not in spec:
            raise ConfigError("sweep", f"{name}: give a list of values" + (
                "" if s.kind not in (int, float) else ", or low and high"))
        low, high = check(spec["low"]), check(spec["high"])
        if not low < high:
            raise ConfigError("sweep", f"{name}: low ({low}) must be below high ({high})")
        log = bool(spec.get("log", False))
        if log and low <= 0:
            raise ConfigError("sweep", f"{name}: a log range needs low > 0")
        return Param(name, low=low, high=high, log=log)
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        return Param(name, values=(check(spec),))
    raise ConfigError("sweep", f"{name}: give a list of values or {{low = …, high = …}}")


@dataclass(frozen=True)
class Space:
    """What a study varies, and the settings all its trials share."""

    params: tuple[Param, ...]
    settings: dict = field(default_factory=dict)  # flat setting overrides (with "preset")
    source: str = ""  # the named study or the file it came from

    def grid(self) -> dict[str, list]:
        bad = [p.name for p in self.params if not p.values]
        if bad:
            raise ConfigError("sweep", f"--sampler grid needs lists of values, not ranges ({', '.join(bad)})")
        return {p.name: list(p.values) for p in self.params}

    def size(self) -> int | None:
        """Trials in the full grid (None when a range makes it endless)."""
        if any(not p.values for p in self.params):
            return None
        return math.prod(len(p.values) for p in self.params)

    def to_json(self) -> dict:
        return {"params": {p.name: p.to_json() for p in self.params}, "settings": self.settings, "source": self.source}

    @classmethod
    def from_json(cls, data: dict) -> Space:
        return cls(tuple(parse_param(k, v.get("values", v)) for k, v in data["params"].items()),
                   dict(data.get("settings", {})), data.get("source", ""))


def load_space(spec: str) -> Space:
    """A named study (latent, beta) or a TOML file with a [sweep] section (its other keys: shared settings)."""
    if spec in NAMED:
        params, settings = NAMED[spec]
        return Space(tuple(parse_param(k, v) for k, v in params.items()), dict(settings), spec)
    path = Path(spec)
    if not path.suffix and not path.exists():
        raise ConfigError("sweep", f"no study named {spec!r} (named: {', '.join(NAMED)}) and no such file")
    from vaetui.config.resolve import flatten_settings

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("sweep", f"{spec}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("sweep", f"{spec}: not a readable TOML file ({exc})") from None
    sweep = data.pop("sweep", None)
    if not isinstance(sweep, dict) or not sweep:
        raise ConfigError("sweep", f"{spec}: no [sweep] section saying what to vary (e.g. beta = [0.3, 1])")
    settings = flatten_settings(data, str(path))
    return Space(tuple(parse_param(k, v) for k, v in sweep.items()), settings, str(path))


# ---------------------------------------------------------------------------------------- the study on disk
@dataclass(frozen=True)
class StudySpec:
    """study.json: what a study is, written once when it is created; workers and resumes read it."""

    name: str
    space: Space
    metric: str = "valid-loss"
    sampler: str = "tpe"
    pruner: str = "median"
    trials: int = 8
    storage: str = ""  # an Optuna storage URL; empty: the journal file in the study folder
    seed: int = 0
    evaluate: bool = False  # each trial, once ended, is evaluated (TRIAL_EVAL) and its eval kept in its run

    def to_json(self) -> dict:
        return {"name": self.name, "space": self.space.to_json(), "metric": self.metric, "sampler": self.sampler,
                "pruner": self.pruner, "trials": self.trials, "storage": without_password(self.storage),
                "seed": self.seed, "evaluate": self.evaluate}

    @classmethod
    def from_json(cls, data: dict) -> StudySpec:
        return cls(data["name"], Space.from_json(data["space"]), data["metric"], data["sampler"], data["pruner"],
                   int(data["trials"]), data.get("storage", ""), int(data.get("seed", 0)),
                   bool(data.get("evaluate", False)))


def study_dir(runs_root: Path, name: str) -> Path:
    return Path(runs_root) / name


def trial_run_name(study: str, number: int) -> str:
    return f"{study}-t{number:03d}"


def write_spec(runs_root: Path, spec: StudySpec) -> None:
    from vaetui.disk.files import atomic_write_bytes

    folder = study_dir(runs_root, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "study.json", (json.dumps(spec.to_json(), indent=2) + "\n").encode())


def read_spec(runs_root: Path, name: str) -> StudySpec:
    path = study_dir(runs_root, name) / "study.json"
    try:
        return StudySpec.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError("study", f"no study {name!r} in {runs_root}: start it with vaetui sweep SPACE "
                          f"--study {name}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError("study", f"{path} is damaged ({type(exc).__name__}): start a new study") from None


STORAGE_ENV = "VAETUI_STORAGE_URL"  # a storage URL with its password: given to workers, never written to disk


def without_password(url: str) -> str:
    """The URL as study.json keeps it: user, host and database, never a password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + (f"[{host}]" if ":" in host else host) + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def storage_url(stored: str) -> str:
    """The URL to connect with: the one in $VAETUI_STORAGE_URL when it names the same storage (it may carry the
    password), else the stored one (the driver then finds the password in its own files: ~/.pgpass, PGPASSWORD,
    MySQL's option files)."""
    given = os.environ.get(STORAGE_ENV, "")
    return given if given and without_password(given) == stored else stored


def storage(runs_root: Path, spec: StudySpec):
    """The Optuna storage: the study's journal file, or the URL it was created with."""
    if spec.storage:
        return storage_url(spec.storage)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(study_dir(runs_root, spec.name) / "journal.log")))


def _storage_error(spec: StudySpec, exc: Exception) -> ConfigError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for secret in {storage_url(spec.storage), os.environ.get(STORAGE_ENV, "")} - {"", spec.storage}:
        first = first.replace(secret, spec.storage)  # never print a password
    return ConfigError("storage", f"cannot open the study in {spec.storage or 'its journal file'} "
                       f"({type(exc).__name__}: {first[:200]}): check the URL, that the server is up and that "
                       "its driver is installed (pip install 'vaetui[postgres]')")


def sampler(spec: StudySpec):
    import optuna

    if spec.sampler in ("grid", "random"):  # a grid is enqueued when the study is made (see new_study)
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=min(5, max(spec.trials // 3, 1)))


def pruner(spec: StudySpec):
    import optuna

    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def load_study(runs_root: Path, spec: StudySpec, create: bool = True):
    """The Optuna study (created on first use unless create=False), quiet: vaetui says what happens itself.
    A storage that cannot be reached, or a URL it cannot read, is a one-line ConfigError."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if not create:
            return optuna.load_study(study_name=spec.name, storage=storage(runs_root, spec), sampler=sampler(spec),
                                     pruner=pruner(spec))
        return optuna.create_study(study_name=spec.name, storage=storage(runs_root, spec), sampler=sampler(spec),
                                   pruner=pruner(spec), direction=METRICS[spec.metric], load_if_exists=True)
    except KeyError:
        raise ConfigError("study", f"study {spec.name!r} is not in {spec.storage or 'its journal file'}") from None
    except (ImportError, ValueError, RuntimeError, OSError) as exc:
        raise _storage_error(spec, exc) from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's and the drivers' own errors (OperationalError, ...)
        if type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg2", "psycopg", "pymysql", "MySQLdb",
                                                  "optuna"):
            raise _storage_error(spec, exc) from None
        raise


def new_study(runs_root: Path, spec: StudySpec):
    """Create the study; a grid becomes its trials, enqueued in order (Optuna's GridSampler stops a study from
    inside, which only works under study.optimize, not ask-and-tell across processes)."""
    import itertools

    study = load_study(runs_root, spec)
    if spec.sampler == "grid" and not study.get_trials(deepcopy=False):
        grid = spec.space.grid()
        for values in itertools.product(*grid.values()):
            study.enqueue_trial(dict(zip(grid, values)))
    return study
