"""Locks on files: a plain blocking flock, and a run's trainer lock with its holder and heartbeat.

`fcntl.flock` is held by the open file, so it is released by the kernel when the holder
dies, however it dies: a lock is never "left behind" on the machine that took it. The
file also names the holder (pid, host) and a heartbeat the holder refreshes, because a
flock on a shared filesystem may not be seen from another host: there, a fresh
heartbeat is what says the holder lives.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from vaetui.format import duration, finite

HEARTBEAT_S = 20.0  # how often a holder refreshes its heartbeat
STALE_AFTER_S = 120.0  # a holder on another host silent this long is taken to be gone


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold a blocking flock on path (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on an existing path, or None when someone holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


RECORD_BYTES = 512  # the holder's record, padded with spaces: every write replaces it whole, never empties it


def _read_json(path: Path) -> dict[str, Any] | None:
    """The lock file's record: None when there is none (no file, or empty: its taker had not written yet),
    {} when it is damaged; else {pid: int, host: str, heartbeat: float | None}, whatever the file holds."""
    try:
        data = json.loads(path.read_text() or "null")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if data is None:
        return None
    if not isinstance(data, dict):
        return {}
    return {"pid": _number(data.get("pid"), int, -1), "host": data.get("host") if isinstance(data.get("host"), str)
            else "?", "heartbeat": _number(data.get("heartbeat", data.get("time")), float, None)}


def _number(value, kind, default):
    """value as kind when it is a finite number (a damaged record holds "soon", null, a list...), else default."""
    return default if finite(value) is None else kind(value)


def silence(path: Path, record: dict[str, Any]) -> float:
    """Seconds this host has seen the holder's heartbeat unchanged: another host's clock is never compared with
    ours, only what was read here, at two moments of our own clock.

    The first look at a heartbeat value says 0 (it may have just been written); each look is noted in the cache
    folder, so a later process (`vaetui train --resume` a minute on) sees how long it has stood still.
    """
    from vaetui.disk.files import atomic_write_bytes, cache_dir

    token = f"{record.get('host')}:{record.get('pid')}:{record.get('heartbeat')!r}"
    key = os.path.realpath(path)
    book = cache_dir() / "heartbeats.json"
    now = _now()
    try:
        seen = json.loads(book.read_text())
        seen = seen if isinstance(seen, dict) else {}
    except (OSError, ValueError):
        seen = {}
    mine = seen.get(key)
    if isinstance(mine, list) and len(mine) == 2 and mine[0] == token and isinstance(mine[1], (int, float)):
        return max(0.0, now - float(mine[1]))
    seen = {k: v for k, v in seen.items() if isinstance(v, list) and len(v) == 2
            and isinstance(v[1], (int, float)) and now - v[1] < 30 * 86400}
    seen[key] = [token, now]
    try:
        atomic_write_bytes(book, json.dumps(seen).encode(), durable=False)
    except OSError:
        pass  # a read-only cache: every look is a first look, and a silent holder elsewhere is never taken over
    return 0.0


def _now() -> float:
    return time.time()


class HeldElsewhere(Exception):
    """The lock is held by a live process; the message names it."""


class RunLock:
    """The lock a trainer holds on its run folder for as long as it trains."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._me: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> str | None:
        """Take the lock; returns a warning when a dead holder's lock was taken over.

        Raises HeldElsewhere when a live process holds it (here, or on another host with a
        fresh heartbeat).
        """
        if self._fd is not None:
            raise HeldElsewhere("this process already trains this run")
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise HeldElsewhere((holder(self.path, wait=True) or Holder()).describe()) from None
            # The file may have been removed (and a new one made) between open and flock: then ours is stale.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = _read_json(self.path)
            warning = None
            if previous:
                elsewhere = previous["host"] not in ("?", socket.gethostname())
                beating = elsewhere and previous["heartbeat"] is not None
                age = silence(self.path, previous) if beating else None
                if beating and age < STALE_AFTER_S:
                    os.close(fd)
                    raise HeldElsewhere(Holder(previous["pid"], previous["host"], True, age).describe())
                who = f"pid {previous['pid']}" + (f" on {previous['host']}" if elsewhere else "")
                silent = (f", silent for {_age(age)}" if beating else ", with no readable heartbeat" if elsewhere
                          else ", which is no longer running")
                warning = f"took over the lock left by {who}{silent}"
            elif previous == {}:
                warning = "took over a damaged lock file"
            self._fd = fd
            now = time.time()
            self._me = {"pid": os.getpid(), "host": socket.gethostname(), "time": now, "heartbeat": now}
            self._write()
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name=f"heartbeat {self.path.parent.name}",
                                            daemon=True)
            self._thread.start()
            return warning
        raise HeldElsewhere("another process keeps taking the lock")

    def _write(self) -> None:
        """The record, padded to RECORD_BYTES, in one pwrite over the old one: a reader (here, or on another host
        over a shared filesystem) sees the old record or the new one, never an empty file."""
        data = json.dumps(self._me).encode().ljust(RECORD_BYTES)
        os.pwrite(self._fd, data, 0)
        if os.fstat(self._fd).st_size > RECORD_BYTES:  # a longer file left by an older vaetui
            os.ftruncate(self._fd, RECORD_BYTES)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            fd = self._fd
            if fd is None:
                return
            self._me["heartbeat"] = time.time()
            try:
                self._write()
            except OSError:
                pass

    def release(self) -> None:
        """Give the lock up and remove its file (nobody can be fooled: takers check the file is theirs)."""
        if self._fd is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)



@dataclass(frozen=True)
class Holder:
    """Who holds a run's lock: a process (pid on host; -1 on "?" when its record is unreadable), whether it lives,
    and for a holder on another host how long this host has seen its heartbeat stand still (seconds)."""

    pid: int = -1
    host: str = "?"
    alive: bool = False
    age: float | None = None

    @property
    def here(self) -> bool:
        """Whether the holder runs on this host (its pid means something here)."""
        return self.host == socket.gethostname()

    def describe(self) -> str:
        """'pid 5 on node-b', with its heartbeat's silence when it is on another host."""
        where = f"pid {self.pid if self.pid >= 0 else '?'} on {self.host}"
        if self.age is None or self.here:
            return where
        return (f"{where} (its heartbeat unchanged for {_age(self.age)} as seen here; a holder silent for "
                f"{_age(STALE_AFTER_S)} is taken to be gone)")


def holder(path: Path, wait: bool = False) -> Holder | None:
    """Who holds the lock at path, or None when there is no lock file.

    alive: a process here holds the flock, or a holder on another host whose heartbeat this
    host has not seen stand still for STALE_AFTER_S (age: how long it has, by our clock).
    A damaged file is a holder of pid -1 on "?" (never a traceback).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:
        return Holder()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            locked = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            locked = True
        data = _read_json(path) or {}
        # A taker writes its name right after taking the flock: give it a moment.
        for _ in range(50 if (locked and wait) else 0):
            if data:
                break
            time.sleep(0.01)
            data = _read_json(path) or {}
    finally:
        os.close(fd)
    host = data.get("host", "?")
    elsewhere = host not in ("?", socket.gethostname())
    age = silence(path, data) if elsewhere and data.get("heartbeat") is not None else None
    alive = locked or (elsewhere and age is not None and age < STALE_AFTER_S)
    return Holder(data.get("pid", -1), host, bool(alive), age)


def _age(seconds: float | None) -> str:
    return "?" if seconds is None else duration(int(max(seconds, 0)))  # whole seconds passed: never overstated
