"""The run store: checkpoints/<run>/ with config.json, metrics.jsonl, checkpoints and a lock.

Every write is atomic (vaetui.disk.files). Checkpoints are torch zip files in the format of
vaetui.runs.checkpoint, verified before they are loaded. metrics.jsonl is append-only: one
JSON line per event, written whole, a torn last line trimmed before the next append.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from vaetui.runs import checkpoint
from vaetui.disk import locks
from vaetui.config.settings import RunConfig
from vaetui.errors import InvalidName, RunError, VaeError
from vaetui.disk.files import atomic_write_bytes, remove_abandoned_temps
from vaetui.runs.logfile import EventLog
from vaetui.runs.folder import is_study_folder, remove_run_files

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
DEFAULT_ROOT = Path("checkpoints")
# Among checkpoints of the same step: the newest kind of file first.


def validate_name(name: str, what: str = "run") -> str:
    """A run (or study) name is a plain folder name: letters, digits, '.', '_', '-' (no path traversal)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidName(name, what, "use letters, digits, '.', '_' or '-' (at most 80)")
    return name


class Run:
    """One run's folder."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self.name = self.path.name
        self.read_only = read_only
        self._lock: locks.RunLock | None = None
        self.log = EventLog(self.metrics_path)

    # ---- files -------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.path / "lock"

    @property
    def snapshots(self) -> Path:
        return self.path / "snapshots"

    def config(self) -> RunConfig:
        """The run's validated-at-creation config."""
        try:
            return RunConfig.from_json(self.config_path.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a vaetui run (no config.json)") from None
        except VaeError as exc:
            raise RunError(f"{self.config_path} is damaged: {exc}") from None

    def write_config(self, config: RunConfig) -> None:
        atomic_write_bytes(self.config_path, config.to_json().encode())

    # ---- metrics -----------------------------------------------------------------
    def append_event(self, event: dict[str, Any]) -> None:
        """Append one event to metrics.jsonl (vaetui.runs.logfile.EventLog)."""
        self.log.append(event)

    def sync_events(self) -> None:
        self.log.sync()

    def repair_events(self) -> bool:
        return self.log.repair()

    def truncate_events_after(self, step: int) -> None:
        self.log.truncate_after(step)

    def read_events(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events from byte offset on, and the offset after the last complete line."""
        return self.log.read(offset)

    # ---- checkpoints -------------------------------------------------------------
    def checkpoint_path(self, label: str) -> Path:
        return self.path / f"ckpt-{label}.pt"

    def save_checkpoint(self, payload: dict[str, Any] | bytes, label: str) -> Path:
        """Write ckpt-<label>.pt atomically (a payload dict, or bytes from checkpoint.encode), then sync the log."""
        path = checkpoint.save(self.checkpoint_path(label), payload)
        self.sync_events()
        return path

    def epoch_checkpoints(self) -> list[Path]:
        """ckpt-epoch-N.pt files, oldest first."""
        return checkpoint.epoch_files(self.path)

    def prune_epoch_checkpoints(self, keep_last: int) -> None:
        for p in self.epoch_checkpoints()[:-keep_last]:
            p.unlink(missing_ok=True)

    def has_checkpoint(self) -> bool:
        """Any checkpoint file at all (cheap: no file is opened)."""
        return any(self.path.glob("ckpt-*.pt"))

    def checkpoint_candidates(self) -> list[Path]:
        """Every checkpoint, newest first by the step it holds (vaetui.runs.checkpoint.ranked)."""
        return [p for p, _ in checkpoint.ranked(self.path)]

    def resolve_checkpoint(self, which: str | Path) -> Path:
        """A label (best, latest, epoch-N) or a path -> the file it names (which may not exist)."""
        return checkpoint.resolve(self.path, which)

    def load_checkpoint(self, which: str | Path | None = None, map_location: str = "cpu",
                        fallback: bool = True) -> tuple[dict[str, Any], Path, list[str]]:
        """Load a checkpoint, verified: (payload, path used, warnings about files skipped); see
        vaetui.runs.checkpoint.load_from."""
        return checkpoint.load_from(self.path, self.name, which, map_location, fallback)

    def checkpoint_step(self, path: Path) -> int | None:
        """The step a checkpoint holds, read without loading it."""
        return checkpoint.step_of(path)

    # ---- lock --------------------------------------------------------------------
    def acquire_lock(self) -> str | None:
        """Take the run's lock for as long as this process trains it; returns a warning when a dead holder's
        lock was taken over."""
        if self.read_only:
            raise RunError(f"run {self.name} is read-only: train a new run instead")
        if self._lock is None:
            self._lock = locks.RunLock(self.lock_path)
        try:
            warning = self._lock.acquire()
        except locks.HeldElsewhere as exc:
            raise RunError(f"run {self.name} is being trained by {exc}: watch it with `vaetui monitor {self.name}` "
                           f"or stop that process first") from None
        # Checkpoints and snapshots are written by the lock's holder alone: a temp one left now is a dead
        # trainer's. Other files (config.json, eval/) have writers that take no lock: only old temps go.
        for pattern in (".ckpt-*.tmp", "snapshots/.*.tmp"):
            for tmp in self.path.glob(pattern):
                tmp.unlink(missing_ok=True)
        for folder in (self.path, self.path / "eval"):
            remove_abandoned_temps(folder)
        self.repair_events()
        return f"run {self.name}: {warning}" if warning else None

    def lock_holder(self) -> locks.Holder | None:
        """Who holds the lock (pid, host, alive, age of its heartbeat), or None when unlocked."""
        return locks.holder(self.lock_path)

    def live_trainer(self) -> locks.Holder | None:
        """The live process training this run (here, or on another host with a fresh heartbeat), or None."""
        holder = locks.holder(self.lock_path)
        return holder if holder is not None and holder.alive else None

    def release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    # ---- history and summary -----------------------------------------------------
    def history(self, steps: str = "all"):
        """The run's whole history, folded from metrics.jsonl (vaetui.runs.history)."""
        from vaetui.runs.history import RunHistory

        rh = RunHistory(self.metrics_path, self.name, self._planned_epochs(), steps)
        rh.refresh()
        return rh.history

    def _planned_epochs(self) -> int:
        try:
            return self.config().train.epochs
        except VaeError:
            return 1

    def info(self, summaries=None):
        """The runs-list line (vaetui.summaries.run_info)."""
        from vaetui.runs.summaries import Summaries, run_info

        return run_info(self, summaries or Summaries(None))

    # ---- evaluations -------------------------------------------------------------
    @staticmethod
    def eval_name(protocol: dict[str, Any]) -> str:
        """eval/<checkpoint>-<split>-n<N>-k<K>-s<seed>.json: one file per protocol, so reruns replace it."""
        ckpt = Path(protocol["checkpoint"]).stem.removeprefix("ckpt-")
        sampler = protocol.get("sampler", "prior")  # samples from another sampler (gmm, vamp): an eval of its own
        tail = "" if sampler == "prior" else f"-{sampler}"
        return f"{ckpt}-{protocol['split']}-n{protocol['count']}-k{protocol['k']}-s{protocol['seed']}{tail}.json"

    def save_eval(self, result: dict[str, Any]) -> Path:
        """Store an evaluation (with its protocol and when it was made) in eval/."""
        result = {**result, "written": time.time()}
        return atomic_write_bytes(self.path / "eval" / self.eval_name(result["protocol"]),
                                  json.dumps(result, indent=2).encode())

    def newest_eval(self, key: str, split: str = "test") -> dict[str, Any] | None:
        """The newest stored evaluation on a split that holds `key` (e.g. 'disentanglement', 'samples')."""
        return next((r for r in self.evals(split=split) if key in r), None)

    def evals(self, **protocol: Any) -> list[dict[str, Any]]:
        """Stored evaluations whose protocol has these values, newest first (by when they were made)."""
        found = []
        for p in (self.path / "eval").glob("*.json"):
            try:
                r = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            proto = r.get("protocol", {}) if isinstance(r, dict) else {}
            if all(proto.get(k) == v for k, v in protocol.items()):
                found.append((r.get("written", p.stat().st_mtime), r))
        return [r for _, r in sorted(found, key=lambda t: -t[0])]


def load_checkpoint_file(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Verify and load one checkpoint file (see vaetui.checkpoint.load)."""
    return checkpoint.load(path, map_location)


class RunStore:
    """All runs under one folder (default ./checkpoints), plus the packaged read-only demo run."""

    def __init__(self, root: str | Path | None = None, include_demo: bool = True):
        self.root = Path(root) if root is not None else DEFAULT_ROOT
        self.include_demo = include_demo
        from vaetui.runs.summaries import Summaries

        self.summaries = Summaries()

    def _demo(self) -> Run | None:
        if not self.include_demo:
            return None
        path = Path(__file__).parents[1] / "demo" / "demo"  # vaetui/demo/demo, shipped in the package
        return Run(path, read_only=True) if (path / "config.json").exists() else None

    def names(self) -> list[str]:
        """Run names, the demo first when packaged."""
        found = []
        demo = self._demo()
        if demo:
            found.append(demo.name)
        if self.root.is_dir():
            found += sorted(p.name for p in self.root.iterdir()
                            if (p / "config.json").exists() and p.name not in found)
        return found

    def open(self, name: str) -> Run:
        """An existing run by name (or by path to its folder)."""
        if os.sep in name and Path(name, "config.json").exists():
            return Run(Path(name))
        validate_name(name)
        path = self.root / name
        if (path / "config.json").exists():
            return Run(path)
        demo = self._demo()
        if demo and name == demo.name:
            return demo
        known = ", ".join(self.names()) or "none yet"
        raise RunError(f"no run named {name!r} in {self.root} (runs: {known})")

    def create(self, config: RunConfig, name: str | None = None) -> Run:
        """A new run folder with its config.json; refuses to overwrite an existing run."""
        if name is None:
            name = f"{config.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
            base, k = name, 1
            while (self.root / name).exists():
                k += 1
                name = f"{base}-{k}"
        validate_name(name)
        if name == "demo" and self._demo() is not None:
            raise RunError("the name 'demo' is taken by the packaged demo run: choose another --name")
        path = self.root / name
        if (path / "config.json").exists():
            raise RunError(f"run {name!r} already exists: resume it with --resume {name} or choose another --name")
        if is_study_folder(path):
            raise RunError(f"{name!r} is a study (runs and studies share one namespace): choose another --name")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunError(f"{path} exists and is not a vaetui run: choose another --name")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create {path}: {exc.strerror}") from None
        run = Run(path)
        run.write_config(config)
        return run

    def _editable(self, name: str) -> Run:
        run = self.open(name)
        if run.read_only:
            raise RunError(f"run {name} is read-only")
        if (trainer := run.live_trainer()) is not None:
            raise RunError(f"run {name} is being trained by pid {trainer.pid}: stop it first")
        return run

    def rename(self, name: str, new: str) -> Run:
        """Rename a run's folder (not while it trains)."""
        run = self._editable(name)
        validate_name(new)
        target = self.root / new
        if target.exists() or (new == "demo" and self._demo() is not None):
            raise RunError(f"a run named {new!r} already exists: choose another name")
        os.rename(run.path, target)
        return Run(target)

    def delete(self, name: str) -> list[str]:
        """Delete what belongs to a run (not while it trains); returns the names of what was left because it is
        not a run's (a study's journal, a user's notes): then the folder stays too.

        A run that is a symbolic link is refused: vaetui deletes only what it made, not where a link points.
        """
        run = self._editable(name)
        if run.path.is_symlink():
            raise RunError(f"run {name} is a link to {os.readlink(run.path)}: remove the link (rm "
                           f"{run.path}) and the folder it points to yourself")
        try:
            return remove_run_files(run.path)
        except OSError as exc:
            raise RunError(f"cannot delete run {name}: {exc.strerror or exc}") from None

    def infos(self) -> list:
        """RunInfo for every run; one whose config.json cannot be read is listed as damaged, not left out."""
        out = []
        for name in self.names():
            try:
                run = self.open(name)
            except VaeError:
                continue
            try:
                out.append(run.info(self.summaries))
            except VaeError:
                from vaetui.runs.summaries import damaged_info

                out.append(damaged_info(run))
        return out

    def __iter__(self) -> Iterator[Run]:
        for name in self.names():
            yield self.open(name)
