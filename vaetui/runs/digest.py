"""Since you left: what a run did while nobody looked at it, in a few lines.

"Last looked" is the person's, not the run's: it lives in their cache (`looked.json` in vaetui's cache folder, by
run folder), written when a monitor closes and when the runs list is left, never in the run folder (another person
watching the same run has their own). A run with no record has no digest (there is no "since").
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetui.format import duration

FILE = "looked.json"
KEEP = 2000  # runs remembered (the oldest looks are forgotten first)


@dataclass(frozen=True)
class Look:
    """What the person saw of a run when they last looked."""

    step: int
    epochs: int
    status: str
    best_valid: float | None
    alerts: int  # the run's alerts so far
    time: float


def _path(cache: Path | None = None) -> Path:
    from vaetui.disk.files import cache_dir

    return (cache or cache_dir()) / FILE


def _read(cache: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(_path(cache).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def key(run_path: Path, where: str) -> str:
    """One record per run folder and per place it was seen (the monitor, the runs list)."""
    return f"{where}:{os.path.realpath(run_path)}"


def last_look(run_path: Path, where: str = "monitor", cache: Path | None = None) -> Look | None:
    rec = _read(cache).get(key(run_path, where))
    try:
        return Look(**rec) if rec else None
    except TypeError:  # a record of another version
        return None


def look_of(history, now: float | None = None) -> Look:
    """What a history shows now."""
    return Look(history.step, history.epochs_done, str(history.status), history.best_valid, history.alert_count,
                time.time() if now is None else now)


def remember(looks: dict[str, Look], cache: Path | None = None) -> None:
    """Record looks (key -> Look), keeping the newest KEEP; a cache that cannot be written is no error."""
    from dataclasses import asdict

    from vaetui.disk.files import atomic_write_bytes

    data = _read(cache)
    data.update({k: asdict(v) for k, v in looks.items()})
    if len(data) > KEEP:
        data = dict(sorted(data.items(), key=lambda kv: kv[1].get("time", 0))[-KEEP:])
    try:
        atomic_write_bytes(_path(cache), json.dumps(data).encode(), durable=False)
    except OSError:
        pass


def digest(history, before: Look | None, now: float | None = None) -> str | None:
    """A few lines of what changed since `before`, or None when nothing did (or there is no before)."""
    if before is None:
        return None
    steps = history.step - before.step
    new = max(history.alert_count - before.alerts, 0) if history.alert_count >= before.alerts else history.alert_count
    alerts = list(history.alerts)[-new:] if new else []
    status = str(history.status)
    if steps <= 0 and not alerts and status == before.status:
        return None
    now = time.time() if now is None else now
    lines = [f"since you looked {duration(max(now - before.time, 0))} ago:"]
    if steps > 0:
        epochs = history.epochs_done - before.epochs
        lines.append(f"{steps:,} steps (now {history.step:,}/{history.total_steps:,})"
                     + (f", {epochs} epoch{'s' * (epochs != 1)} ({before.epochs} → {history.epochs_done})"
                        if epochs > 0 else ""))
    best = [e for e in history.epochs if e.best]
    if best and (before.best_valid is None or best[-1].valid_loss < before.best_valid):
        was = "" if before.best_valid is None else f" (was {before.best_valid:.1f})"
        lines.append(f"best validation {best[-1].valid_loss:.1f} at epoch {best[-1].epoch}{was}")
    for a in alerts[-3:]:
        lines.append(f"{a.kind}: {a.message}")
    if new > 3:
        lines.append(f"… and {new - 3} earlier alerts")
    eta = history.eta_seconds()
    lines.append(f"now {status}" + (f", ETA {duration(eta)}" if eta is not None else "")
                 + (f" (was {before.status})" if status != before.status else ""))
    return "\n".join(lines)


def list_look(info, now: float | None = None) -> Look:
    """What the runs list shows of a run (its RunInfo) now."""
    return Look(info.step, info.epochs_done, str(info.status), info.best_valid, 0, time.time() if now is None else now)


def list_digest(infos, looks: dict[str, Look], paths: dict[str, Path], now: float | None = None,
                most: int = 5) -> str | None:
    """The runs that moved since the runs list was last seen, one line each (the newest first), or None."""
    moved = []
    for info in infos:
        before = looks.get(key(paths[info.name], "list")) if info.name in paths else None
        if before is None:
            continue
        steps, status = info.step - before.step, str(info.status)
        if steps <= 0 and status == before.status:
            continue
        parts = [f"+{steps:,} steps"] if steps > 0 else []
        if info.best_valid is not None and (before.best_valid is None or info.best_valid < before.best_valid):
            parts.append(f"best valid {info.best_valid:.1f}")
        parts.append(status if status == before.status else f"{before.status} → {status}")
        moved.append((info.updated, f"{info.name}: {', '.join(parts)}", before.time))
    if not moved:
        return None
    moved.sort(key=lambda m: -m[0])
    since = duration(max((time.time() if now is None else now) - min(m[2] for m in moved), 0))
    lines = [f"since you left ({since} ago):"] + [m[1] for m in moved[:most]]
    if len(moved) > most:
        lines.append(f"… and {len(moved) - most} more")
    return "\n".join(lines)


def looks(keys: list[str], cache: Path | None = None) -> dict[str, Look]:
    """The records of these keys that exist."""
    data = _read(cache)
    out = {}
    for k in keys:
        try:
            out[k] = Look(**data[k])
        except (KeyError, TypeError):
            pass
    return out
