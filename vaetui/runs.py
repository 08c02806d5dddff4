"""The run store: checkpoints/<run>/ with config.json, metrics.jsonl, checkpoints and a lock.

Every write is atomic (temp file, flush, fsync, rename). Checkpoints are torch zip files
loaded with weights_only=True; their zip CRC-32s are verified first, because torch.load
does not notice flipped bits inside tensor data.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from vaetui.config import RunConfig
from vaetui.errors import CheckpointError, RunError, VaeError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
DEFAULT_ROOT = Path("checkpoints")
_HELD_LOCKS: set[Path] = set()  # run folders this process holds the lock of


def validate_name(name: str) -> str:
    """A run name is a plain folder name: letters, digits, '.', '_', '-' (no path traversal)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise RunError(f"invalid run name {name!r}: use letters, digits, '.', '_' or '-' (at most 80)")
    return name


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path so a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


class Run:
    """One run's folder."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self.name = self.path.name
        self.read_only = read_only

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
        """Append one JSON line; a line is written whole with one write() call, then flushed."""
        line = (json.dumps(event, separators=(",", ":"), allow_nan=True) + "\n").encode()
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read_events(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events from byte offset on, and the offset after the last complete line (for tailing)."""
        try:
            with open(self.metrics_path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return [], offset
        events = []
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next read
        for line in data[:end].splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line from a crash mid-write is skipped
        return events, offset + end

    def truncate_events_after(self, step: int) -> None:
        """Drop events past step (they were never checkpointed) so a resumed run's log has no duplicates."""
        events, _ = self.read_events()
        keep = [e for e in events if e.get("step", 0) <= step or e.get("type") in ("started",)]
        if len(keep) == len(events):
            return
        data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in keep).encode()
        atomic_write_bytes(self.metrics_path, data)

    # ---- checkpoints -------------------------------------------------------------
    def checkpoint_path(self, label: str) -> Path:
        return self.path / f"ckpt-{label}.pt"

    def save_checkpoint(self, payload: dict[str, Any], label: str) -> Path:
        """torch.save payload to ckpt-<label>.pt atomically."""
        import torch

        buf = io.BytesIO()
        torch.save(payload, buf)
        path = self.checkpoint_path(label)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def epoch_checkpoints(self) -> list[Path]:
        """ckpt-epoch-N.pt files, oldest first."""
        found = []
        for p in self.path.glob("ckpt-epoch-*.pt"):
            m = re.match(r"ckpt-epoch-(\d+)\.pt$", p.name)
            if m:
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def prune_epoch_checkpoints(self, keep_last: int) -> None:
        for p in self.epoch_checkpoints()[:-keep_last]:
            p.unlink(missing_ok=True)

    def checkpoint_candidates(self) -> list[Path]:
        """Checkpoints to try when resuming, best first: latest, then epochs newest first, then best."""
        paths = [self.checkpoint_path("latest"), *reversed(self.epoch_checkpoints()), self.checkpoint_path("best")]
        return [p for p in paths if p.exists()]

    def load_checkpoint(self, which: str | Path = "latest", map_location: str = "cpu",
                        fallback: bool = True) -> tuple[dict[str, Any], Path, list[str]]:
        """Load a checkpoint, verified; on damage fall back to the previous good one.

        Returns (payload, path used, warnings about the files skipped).
        """
        if isinstance(which, Path) or "/" in str(which) or str(which).endswith(".pt"):
            first = Path(which) if Path(which).is_absolute() or Path(which).exists() else self.path / str(which)
        else:
            first = self.checkpoint_path(str(which))
        order = [first] + ([p for p in self.checkpoint_candidates() if p != first] if fallback else [])
        warnings: list[str] = []
        for path in order:
            if not path.exists():
                if path == first:
                    warnings.append(f"{path.name} is missing")
                continue
            try:
                return load_checkpoint_file(path, map_location), path, warnings
            except CheckpointError as exc:
                warnings.append(str(exc))
        if not any(p.exists() for p in order):
            raise CheckpointError(f"run {self.name} has no checkpoint yet: train it first (vaetui train --resume {self.name})")
        raise CheckpointError(f"no usable checkpoint in {self.path}: " + "; ".join(warnings))

    # ---- lock --------------------------------------------------------------------
    def acquire_lock(self) -> str | None:
        """Take the run's lock; returns a warning when a dead process's lock was taken over."""
        if self.read_only:
            raise RunError(f"run {self.name} is read-only: train a new run instead")
        warning = None
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}).encode()
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self.lock_holder()
                if holder and holder.get("alive"):
                    raise RunError(
                        f"run {self.name} is being trained by pid {holder['pid']} on {holder['host']}: "
                        f"watch it with `vaetui monitor {self.name}` or stop that process first"
                    ) from None
                who = f"pid {holder['pid']}" if holder else "an unknown process"
                warning = f"took over the lock of run {self.name} left by {who}, which is no longer running"
                self.lock_path.unlink(missing_ok=True)
                continue
            os.write(fd, me)
            os.close(fd)
            _HELD_LOCKS.add(self.path.resolve())
            for tmp in self.path.glob(".*.tmp"):  # half-written files of a process that died mid-write
                tmp.unlink(missing_ok=True)
            return warning
        raise RunError(f"could not lock run {self.name}: another process keeps taking it")

    def lock_holder(self) -> dict[str, Any] | None:
        """Who holds the lock (pid, host, alive), or None when unlocked."""
        try:
            data = json.loads(self.lock_path.read_text() or "{}")
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError):
            return {"pid": -1, "host": "?", "alive": False}
        pid, host = int(data.get("pid", -1)), data.get("host", "?")
        alive = pid > 0 and (host != socket.gethostname() or _pid_alive(pid))
        if pid == os.getpid() and host == socket.gethostname():
            alive = self.path.resolve() in _HELD_LOCKS  # not a leftover of an earlier run in this process
        return {"pid": pid, "host": host, "alive": alive}

    def release_lock(self) -> None:
        key = self.path.resolve()
        if key in _HELD_LOCKS:
            self.lock_path.unlink(missing_ok=True)
            _HELD_LOCKS.discard(key)

    # ---- summary -----------------------------------------------------------------
    def info(self) -> RunInfo:
        """Summarise config and metrics for listings."""
        cfg = self.config()
        events, _ = self.read_events()
        epochs_done, step, best, status = 0, 0, None, "new"
        for e in events:
            t = e.get("type")
            step = max(step, int(e.get("step", 0)))
            if t == "epoch":
                epochs_done = max(epochs_done, int(e["epoch"]))
                v = e.get("valid_loss")
                if v is not None and (best is None or v < best):
                    best = v
            if t == "started":
                status = "interrupted"
            elif t == "finished":
                status = "finished" if e.get("reason") in ("completed", "max_steps") else "interrupted"
            elif t == "failed":
                status = "failed"
        holder = self.lock_holder()
        if holder and holder["alive"]:
            status = "running"
        try:
            updated = max(self.metrics_path.stat().st_mtime, self.config_path.stat().st_mtime)
        except FileNotFoundError:
            updated = self.config_path.stat().st_mtime
        h, w = cfg.data.size
        return RunInfo(
            name=self.name, preset=cfg.preset, data=cfg.data.source, size=f"{h}x{w}", latent=cfg.model.latent,
            beta=cfg.train.beta, epochs_done=epochs_done, epochs=cfg.train.epochs, step=step, best_valid=best,
            status=status, updated=updated, read_only=self.read_only,
        )


def load_checkpoint_file(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Verify a checkpoint's zip CRCs, then torch.load it with weights_only=True."""
    import torch

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError, OSError):
        raise CheckpointError(f"{path} is truncated or not a checkpoint") from None
    except Exception as exc:  # zlib errors and friends on damaged data
        raise CheckpointError(f"{path} is damaged ({type(exc).__name__})") from None
    if bad is not None:
        raise CheckpointError(f"{path} is corrupt (checksum mismatch in {bad})")
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} cannot be loaded ({type(exc).__name__}: {exc})"[:300]) from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path} is not a vaetui checkpoint")
    return payload


class RunStore:
    """All runs under one folder (default ./checkpoints), plus the packaged read-only demo run."""

    def __init__(self, root: str | Path | None = None, include_demo: bool = True):
        self.root = Path(root) if root is not None else DEFAULT_ROOT
        self.include_demo = include_demo

    def _demo(self) -> Run | None:
        if not self.include_demo:
            return None
        path = Path(__file__).parent / "demo" / "demo"
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
        holder = run.lock_holder()
        if holder and holder["alive"]:
            raise RunError(f"run {name} is being trained by pid {holder['pid']}: stop it first")
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

    def delete(self, name: str) -> None:
        """Delete a run's folder and everything in it (not while it trains)."""
        import shutil

        run = self._editable(name)
        shutil.rmtree(run.path)

    def infos(self) -> list[RunInfo]:
        """RunInfo for every run, skipping folders that are not runs."""
        out = []
        for name in self.names():
            try:
                out.append(self.open(name).info())
            except VaeError:
                continue
        return out

    def __iter__(self) -> Iterator[Run]:
        for name in self.names():
            yield self.open(name)
