"""A person's own model: `--model path/to/file.py:ClassName`, or the name of an installed package's entry point in the
group `vaetui.models` (docs/models.md has a complete example).

The class is a torch `nn.Module` whose constructor takes the run's config (a RunConfig: `config.data.size`,
`config.model.latent`, `config.model.hidden`, ...) and which follows the model protocol (vaetui.models.protocol):
it defines `encode(x) -> (mu, logvar)` and `decode_logits(z)`, and sets `latent` and `image_size`. A subclass of
LatentModel may override the rest (its prior, its KL); a plain nn.Module gets the protocol's defaults for them (its
own `forward`, if any, is not used: vaetui's training step calls the protocol's). It trains on the ELBO,
recon + β·KL(q(z|x) || p(z)).

A file is code: it is run only when this machine's user named it to `vaetui train` or `vaetui sweep` (vaetui.disk.trust),
so a run copied from elsewhere cannot run a file its author chose by being opened.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path

from vaetui.errors import ConfigError, VaeError
from vaetui.models.protocol import REQUIRED_ATTRIBUTES, LatentModel, missing

ENTRY_POINTS = "vaetui.models"
# What a plain nn.Module gets from the protocol: every default LatentModel defines (derived, so a default added there
# cannot be forgotten here). Its own methods of those names are kept, but forward: a plain module's forward is its
# own contract, not the protocol's ModelOutput.
_DEFAULTS = tuple(k for k in LatentModel.__dict__ if not k.startswith("__") and k not in ("encode", "decode_logits"))


def is_file_reference(name: str) -> bool:
    return bool(re.fullmatch(r".+\.py:[A-Za-z_]\w*", name))


def split_reference(name: str) -> tuple[Path, str]:
    """'dir/file.py:Class' -> (the file, absolute; the class name)."""
    path, cls = name.rsplit(":", 1)
    return Path(path).expanduser().resolve(), cls


def absolute(name: str) -> str:
    """A file reference with its path made absolute (a run finds its model from any folder); other names as given."""
    if not is_file_reference(name):
        return name
    path, cls = split_reference(name)
    return f"{path}:{cls}"


def load_class(name: str, trust: bool = False) -> type:
    """The protocol class a user's model reference names. trust=True (a person named it on their command line)
    records the file as trusted first; otherwise an untrusted file is refused, not run."""
    if is_file_reference(name):
        path, cls_name = split_reference(name)
        if not path.is_file():
            raise ConfigError("model.family", f"--model {name}: there is no file {path}")
        from vaetui.disk import trust as trusted_files

        if trust:
            trusted_files.trust(path)
        why = trusted_files.trusted(path)
        if why is not None:
            raise VaeError(f"--model {name}: {path.name} is code and runs only once you name it yourself ({why}): "
                           f"vaetui model --model {path}:{cls_name} --trust")
        module = _import_file(path, name)
        cls = getattr(module, cls_name, None)
        if cls is None:
            raise ConfigError("model.family", f"--model {name}: {path.name} defines no {cls_name}")
    else:
        from importlib.metadata import entry_points

        found = [ep for ep in entry_points(group=ENTRY_POINTS) if ep.name == name]
        if not found:
            raise ConfigError("model.family", f"--model {name}: no such family or installed model (entry points "
                              f"{ENTRY_POINTS})")
        try:
            cls = found[0].load()
        except Exception as exc:  # the package's own import error
            raise VaeError(f"--model {name}: its entry point {found[0].value} failed to load ({exc})") from None
    return protocol_class(cls, name)


def _import_file(path: Path, name: str):
    key = "vaetui_user_model_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[key]
        raise VaeError(f"--model {name}: importing {path.name} failed: {type(exc).__name__}: {exc}") from None
    return module


def protocol_class(cls, name: str) -> type:
    """The class itself when it is a LatentModel; a plain nn.Module gets the protocol's defaults. A class that does not
    follow the protocol is one line naming what is missing."""
    from torch import nn

    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError("model.family", f"--model {name}: {getattr(cls, '__name__', cls)!s} is not a torch "
                          f"nn.Module class")
    lacks = missing(cls)
    if lacks:
        raise ConfigError("model.family", f"--model {name}: {cls.__name__} does not follow the model protocol: it "
                          f"lacks {', '.join(lacks)} (docs/models.md)")
    if issubclass(cls, LatentModel):
        return cls
    grafted = {k: LatentModel.__dict__[k] for k in _DEFAULTS if k == "forward" or not hasattr(cls, k)}
    return type(cls.__name__, (cls,), grafted)


def build(cls: type, config, name: str):
    """An instance for a run config, checked for the attributes the protocol reads."""
    try:
        model = cls(config)
    except VaeError:
        raise
    except Exception as exc:
        raise VaeError(f"--model {name}: {cls.__name__}(config) failed: {type(exc).__name__}: {exc}") from None
    lacks = [a for a in REQUIRED_ATTRIBUTES if not hasattr(model, a)]
    if lacks:
        raise ConfigError("model.family", f"--model {name}: {cls.__name__} does not follow the model protocol: it "
                          f"sets no {', '.join(lacks)} (docs/models.md)")
    if tuple(model.image_size) != tuple(config.data.size):
        raise ConfigError("model.family", f"--model {name}: {cls.__name__}.image_size is {tuple(model.image_size)}, "
                          f"the run's images are {tuple(config.data.size)}")
    return model
