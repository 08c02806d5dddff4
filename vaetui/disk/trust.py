"""The model files this machine's user has trained with: a user's own model (`--model file.py:Class`) is code, and a
run names it in its config.json, so opening a run copied from elsewhere must not run a file its author chose.

`vaetui train` and `vaetui sweep` record the file a person names on their command line (with its SHA-256); loading a
run's model later runs a file only when it is recorded with those same bytes. The record is
$VAETUI_CONFIG_DIR/trusted-models.json (else $XDG_CONFIG_HOME/vaetui/, else ~/.config/vaetui/).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vaetui.disk.files import atomic_write_bytes, config_dir


def _record() -> Path:
    return config_dir() / "trusted-models.json"


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read() -> dict[str, str]:
    try:
        data = json.loads(_record().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def trust(path: Path) -> None:
    """Record a file (its absolute path and the SHA-256 of its bytes now) as one this user runs."""
    path = Path(path).resolve()
    known = _read()
    known[str(path)] = digest(path)
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(_record(), json.dumps(known, indent=1, sort_keys=True).encode())


def trusted(path: Path) -> str | None:
    """None when the file is recorded with its current bytes, else why it is not."""
    path = Path(path).resolve()
    known = _read().get(str(path))
    if known is None:
        return "this machine has not trained with it"
    return None if known == digest(path) else "it changed since this machine trained with it"
