"""The runs list's numbers: one line per run, from its cached summary history and its lock.

`Summaries` keeps each run's summary History (vaetui.runs.history, steps="none") current from
the log's appended bytes: in memory for a long-lived process (the TUI), and on disk under
the cache folder for the next process (`vaetui runs`), so a warm summary costs a stat and
a small read, not a fold of the whole log.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetui.config.settings import model_label
from vaetui.disk.files import atomic_write_bytes
from vaetui.runs.logfile import head_of
from vaetui.runs.status import RunStatus, status_of


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
    status: RunStatus
    updated: float
    read_only: bool = False
    model: str = "vae"  # the family (a user's model: its class name)

    def __post_init__(self):
        self.status = RunStatus(self.status)  # a line read back from the cache holds the word

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def damaged_info(run) -> RunInfo:
    """The runs-list line of a run whose config.json is damaged: its name, status "damaged", nothing else known."""
    try:
        updated = run.config_path.stat().st_mtime
    except OSError:
        updated = 0.0
    return RunInfo(name=run.name, preset="?", data="?", size="?", latent=0, beta=float("nan"), epochs_done=0,
                   epochs=0, step=0, best_valid=None, status=RunStatus.DAMAGED, updated=updated, read_only=run.read_only)


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

    A run whose files did not change since its line was made (and that nobody holds)
    costs three stats: the line itself is cached, in memory and on disk.
    """
    return summaries.line(run)


def _run_info(run, summaries: "Summaries") -> RunInfo:
    cfg = run.config()
    h = summaries.history(run, cfg)
    status = status_of(h.status, live=run.live_trainer() is not None)
    try:
        updated = max(run.metrics_path.stat().st_mtime, run.config_path.stat().st_mtime)
    except FileNotFoundError:
        updated = run.config_path.stat().st_mtime
    hh, ww = cfg.data.size
    return RunInfo(
        name=run.name, preset=cfg.preset, data=cfg.data.source, size=f"{hh}x{ww}", latent=cfg.model.latent,
        beta=cfg.train.beta, epochs_done=h.epochs_done, epochs=cfg.train.epochs, step=h.step,
        best_valid=h.best_valid, status=status, updated=updated, read_only=run.read_only,
        model=model_label(cfg.model.family),
    )


class Summaries:
    """Per-run summaries, refreshed from the appended bytes of each log.

    In memory for a long-lived process (the TUI), and on disk under the cache folder for
    the next process (`vaetui runs`): one small file per run holds its summary History
    (to continue the fold from the log's offset) and its finished line with the file
    signature it was made from (config, log, lock), so an unchanged run is not read at all.
    """

    PERSIST_EVERY_S = 10.0  # a long-lived process writes a run's record at most this often
    VERSION = 5  # records of another version are folded again (1: could hold a half-folded line, see _lock;
    # 2: knew a log by its inode alone; 3: lines without the model; 4: without the count of alerts)

    def __init__(self, folder: Path | None = None):
        from vaetui.disk.files import cache_dir

        self.folder = folder if folder is not None else cache_dir() / "summaries"
        # One fold at a time: two threads sharing a run's follower (the runs list's worker restarted while it
        # still folds) would let the second see the log read to its end while the first is still folding
        # it, and cache a half-folded line ("new", step 0) under the unchanged files' signature for good.
        self._lock = threading.RLock()
        self._live: dict[str, Any] = {}  # run path -> RunHistory
        self._saved: dict[str, dict] = {}  # run path -> the record on disk (as loaded or last written)
        self._written: dict[str, float] = {}

    @staticmethod
    def _key(run) -> str:
        return str(run.path.absolute())

    def _file(self, key: str) -> Path:
        import hashlib

        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"

    def _record(self, key: str) -> dict:
        if key not in self._saved:
            try:
                saved = json.loads(self._file(key).read_text())
                self._saved[key] = saved if saved.get("path") == key and saved.get("version") == self.VERSION else {}
            except (OSError, ValueError, AttributeError):
                self._saved[key] = {}
        return self._saved[key]

    def line(self, run) -> RunInfo:
        """The run's RunInfo, current."""
        with self._lock:
            return self._line(run)

    def cached_line(self, run) -> RunInfo | None:
        """The run's line if the cache holds it for the run's files as they are now (and nobody holds its lock),
        else None: a few stats and, once, a small read; never a fold. What a first frame can afford."""
        with self._lock:
            return self._cached(self._key(run), _signature(run))

    def _cached(self, key: str, signature: tuple) -> RunInfo | None:
        cached = self._record(key).get("line")
        if cached and cached.get("signature") == _jsonable(signature) and signature[2] is None:
            return RunInfo(**cached["info"])
        return None

    def _line(self, run) -> RunInfo:
        key = self._key(run)
        signature = _signature(run)
        if (info := self._cached(key, signature)) is not None:
            return info
        record = self._record(key)
        cached = record.get("line")
        info = _run_info(run, self)
        record["line"] = {"signature": _jsonable(signature), "info": info.to_json()}
        self._persist(key, force=cached is None)
        return info

    def history(self, run, cfg=None):
        """The run's summary History (steps='none'), current."""
        with self._lock:
            return self._history(run, cfg)

    def _history(self, run, cfg=None):
        from vaetui.runs.history import History, RunHistory

        key = self._key(run)
        rh = self._live.get(key)
        if rh is None:
            epochs = (cfg or run.config()).train.epochs
            rh = RunHistory(run.metrics_path, run.name, epochs, steps="none")
            self._restore(run, rh, History, self._record(key))
            self._live[key] = rh
        rh.refresh()
        return rh.history

    @staticmethod
    def _restore(run, rh, history_cls, saved: dict) -> None:
        try:
            with open(run.metrics_path, "rb") as fh:
                st = os.fstat(fh.fileno())
                identity = (st.st_dev, st.st_ino, head_of(fh))
        except OSError:
            return
        if saved.get("identity") != list(identity) or st.st_size < int(saved.get("offset", 0)):
            return
        try:
            rh.history = history_cls.from_state(saved["state"])
        except (KeyError, TypeError, ValueError):
            return
        rh.follower.identity, rh.follower.offset = identity, int(saved["offset"])

    def _persist(self, key: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written.get(key, -1e9) < self.PERSIST_EVERY_S:
            return
        self._written[key] = now
        record = self._record(key)
        rh = self._live.get(key)
        if rh is not None and rh.follower.identity is not None:
            record.update(identity=list(rh.follower.identity), offset=rh.follower.offset, state=rh.history.state())
        record["path"], record["version"] = key, self.VERSION
        try:
            atomic_write_bytes(self._file(key), json.dumps(record, allow_nan=True).encode(), durable=False)
        except OSError:
            pass  # a read-only cache folder: summaries are simply not kept


def _jsonable(signature: tuple) -> list:
    return [list(s) if s is not None else None for s in signature]
