"""The one way a run's settings come to be: a preset, then layers of flat overrides (a config file, a study's
shared settings, the form or the command line's flags, a trial's parameters), then, for a resumed run, the resume
rule; validated once. The CLI, the new-run form and studies all call `resolve`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from vaetui.config.fields import parse_size
from vaetui.config.presets import DEFAULT_PRESET, preset
from vaetui.config.settings import (
    SECTIONS, SETTINGS_BY_KEY, SETTINGS_BY_NAME, SETTINGS_BY_SECTION, RunConfig, _did_you_mean, setting,
)
from vaetui.errors import ConfigError


def resolve(preset_name: str | None = None, *layers: Mapping[str, Any], current: RunConfig | None = None
            ) -> RunConfig:
    """A validated RunConfig: for a new run, the preset (named here, else by the last layer that names one, else
    the default) with each layer of flat overrides applied in order (None: not given); for a resumed run (current),
    its own config with the layers' settings a resume may change, the others refused in one ConfigError."""
    if current is not None:
        given = {k: v for layer in layers for k, v in layer.items() if v is not None and k != "preset"}
        changed = resume_changes(current, given)
        if changed:
            raise ConfigError("resume", "a resumed run keeps its model, data and optimiser settings; drop "
                              f"{', '.join(changed)} or start a new run")
        return with_overrides(current, given).validate()
    named = [layer["preset"] for layer in layers if layer.get("preset")]
    cfg = preset(preset_name or (named[-1] if named else DEFAULT_PRESET))
    for layer in layers:
        cfg = with_overrides(cfg, {k: v for k, v in layer.items() if k != "preset"})
    return cfg.validate()


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
