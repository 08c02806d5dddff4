"""The runs list's numbers: one line per run, from its cached summary history and its lock.

`Summaries` keeps each run's summary History (vaetui.history, steps="none") current from
the log's appended bytes: in memory for a long-lived process (the TUI), and on disk under
the cache folder for the next process (`vaetui runs`), so a warm summary costs a stat and
a small read, not a fold of the whole log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetui.files import atomic_write_bytes


@dataclass
class RunInfo:
    """One line of `vaetui runs`."""

    name: str
    preset: str
    data: str
    size: str
    latent: int
    beta: float
    epochs_done: int
    epochs: int
    step: int
    best_valid: float | None
    status: str
    updated: float
    read_only: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _signature(run) -> tuple:
    """What changes when a run changes: its config, its log (identity and size) and its lock file."""
    out = []
    for p in (run.config_path, run.metrics_path, run.lock_path):
        try:
            st = p.stat()
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def run_info(run, summaries: "Summaries") -> RunInfo:
    """The runs-list line: config, the history's summary (cached), and whether a live process holds the lock.

    A run whose files did not change since the last look (and that nobody holds) costs three stats.
    """
    signature = _signature(run)
    key = run.path.resolve()
    cached = summaries.lines.get(key)
    if cached is not None and cached[0] == signature and signature[2] is None:
        return cached[1]
    info = _run_info(run, summaries)
    summaries.lines[key] = (signature, info)
    return info


def _run_info(run, summaries: "Summaries") -> RunInfo:
    cfg = run.config()
    h = summaries.history(run, cfg)
    holder = run.lock_holder()
    live = bool(holder and holder["alive"])
    status = h.status
    if live:
        status = "paused" if status == "paused" else "running"
    elif status in ("running", "paused"):
        status = "interrupted"  # started, never finished, nobody trains it: resumable
    try:
        updated = max(run.metrics_path.stat().st_mtime, run.config_path.stat().st_mtime)
    except FileNotFoundError:
        updated = run.config_path.stat().st_mtime
    hh, ww = cfg.data.size
    return RunInfo(
        name=run.name, preset=cfg.preset, data=cfg.data.source, size=f"{hh}x{ww}", latent=cfg.model.latent,
        beta=cfg.train.beta, epochs_done=h.epochs_done, epochs=cfg.train.epochs, step=h.step,
        best_valid=h.best_valid, status=status, updated=updated, read_only=run.read_only,
    )


class Summaries:
    """Per-run summary histories, refreshed from the appended bytes of each log.

    In memory for a long-lived process (the TUI), and on disk under the cache folder for
    the next process (`vaetui runs`): a warm summary costs a stat and a small read, not a
    fold of the whole log.
    """

    PERSIST_EVERY_S = 10.0  # a long-lived process writes a run's cached summary at most this often

    def __init__(self, folder: Path | None = None):
        from vaetui.files import cache_dir

        self.folder = folder if folder is not None else cache_dir() / "summaries"
        self._live: dict[Path, Any] = {}
        self._persisted: dict[Path, float] = {}
        self.lines: dict[Path, tuple] = {}  # run -> (file signature, its RunInfo)

    def _file(self, run) -> Path:
        import hashlib

        key = hashlib.sha1(str(run.path.resolve()).encode()).hexdigest()[:20]
        return self.folder / f"{key}.json"

    def history(self, run, cfg=None):
        """The run's summary History (steps='none'), current."""
        from vaetui.history import History, RunHistory

        key = run.path.resolve()
        rh = self._live.get(key)
        if rh is None:
            epochs = (cfg or run.config()).train.epochs
            rh = RunHistory(run.metrics_path, run.name, epochs, steps="none")
            self._restore(run, rh, History)
            self._live[key] = rh
        before = (rh.follower.identity, rh.follower.offset)
        rh.refresh()
        if (rh.follower.identity, rh.follower.offset) != before:
            now = time.monotonic()
            if now - self._persisted.get(key, -1e9) >= self.PERSIST_EVERY_S:
                self._persisted[key] = now
                self._persist(run, rh)
        return rh.history

    def _restore(self, run, rh, history_cls) -> None:
        try:
            saved = json.loads(self._file(run).read_text())
            st = run.metrics_path.stat()
        except (OSError, ValueError):
            return
        if saved.get("path") != str(run.path.resolve()) or saved.get("identity") != [st.st_dev, st.st_ino]:
            return
        if st.st_size < int(saved.get("offset", 0)):
            return
        try:
            rh.history = history_cls.from_state(saved["state"])
        except (KeyError, TypeError, ValueError):
            return
        rh.follower.identity, rh.follower.offset = (st.st_dev, st.st_ino), int(saved["offset"])

    def _persist(self, run, rh) -> None:
        if rh.follower.identity is None:
            return
        data = {"path": str(run.path.resolve()), "identity": list(rh.follower.identity),
                "offset": rh.follower.offset, "state": rh.history.state()}
        try:
            atomic_write_bytes(self._file(run), json.dumps(data, allow_nan=True).encode(), durable=False)
        except OSError:
            pass  # a read-only cache folder: summaries are simply not kept
