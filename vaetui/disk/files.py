"""Writing files so that a reader sees the old file or the whole new one, never a part.

One helper for every file vaetui writes: a temporary file beside the target, created
with mode 0666 so the user's umask applies (``tempfile.mkstemp`` would make it 0600),
flushed and fsynced, renamed onto the target, and the folder fsynced so the rename
survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from typing import Iterator

TEMP_SUFFIX = ".tmp"
# A writer touches its temp file until the moment it renames it; one untouched this long was abandoned.
ABANDONED_AFTER_S = 3600.0


def temp_name(path: Path) -> Path:
    """A fresh hidden temporary name beside path (``.<name>.<random>.tmp``)."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _create_temp(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = temp_name(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def remove_abandoned_temps(folder: Path, pattern: str = ".*" + TEMP_SUFFIX,
                           older_than_s: float = ABANDONED_AFTER_S) -> None:
    """Remove temp files a dead writer left in folder; a live writer's (recently touched) are left alone.

    By age, not by who holds a lock: writers that take no lock (eval, a rename, another
    trainer racing for the lock) write into the same folders.
    """
    now = time.time()
    for tmp in Path(folder).glob(pattern):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass


def fsync_dir(folder: Path) -> None:
    """Make a rename in folder durable (best effort: some filesystems refuse)."""
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


def fsync_file(path: Path) -> None:
    """fsync a file written by someone else (PIL, matplotlib) before it is renamed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes | memoryview, durable: bool = True) -> Path:
    """Write data to path atomically; returns the path.

    durable=False skips the fsyncs: still never half-written, but a power cut may lose it
    (for caches that are rebuilt when missing).
    """
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write to (by any library); on success it is fsynced and renamed onto path."""
    path = Path(path)
    fd, tmp = _create_temp(path)
    os.close(fd)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _user_dir(own: str, xdg: str, fallback: str) -> Path:
    """$<own>, else $<xdg>/vaetui, else ~/<fallback>/vaetui."""
    if os.environ.get(own):
        return Path(os.environ[own])
    return Path(os.environ.get(xdg) or Path.home() / fallback) / "vaetui"


def cache_dir() -> Path:
    """$VAETUI_CACHE_DIR, else $XDG_CACHE_HOME/vaetui, else ~/.cache/vaetui."""
    return _user_dir("VAETUI_CACHE_DIR", "XDG_CACHE_HOME", ".cache")


def config_dir() -> Path:
    """$VAETUI_CONFIG_DIR, else $XDG_CONFIG_HOME/vaetui, else ~/.config/vaetui."""
    return _user_dir("VAETUI_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")


def current_umask() -> int:
    """The process's umask, read without changing it (Linux /proc), else by the set-and-restore dance."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old
