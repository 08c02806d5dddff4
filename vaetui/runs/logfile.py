"""metrics.jsonl, the file: append whole lines, repair a torn tail, drop what a resume undoes, follow it.

Writing: one event a line, each written with a single write() call; a line torn by a
kill is trimmed before this process's first append, so it cannot swallow the next event.
Reading: `LogFollower` reads only the appended bytes, remembering the file's identity
(device, inode, first line) and offset; a rewrite (a resume, a roll-back: a new first
line, whatever inode it gets) or a shrink means "read again from the start", and it says so. Folding the events into
what screens show is vaetui.runs.history's job.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from vaetui.disk.files import atomic_write_bytes

HEADER = "log"  # the first line of a rewritten log: {"type":"log","generation":N,"time":…}; readers skip it
HEAD_BYTES = 4096  # how much of the first line identifies the file


class EventLog:
    """The writer's side of one run's metrics.jsonl."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._checked = False

    def append(self, event: dict[str, Any]) -> None:
        """Append one JSON line, written whole with one write() call (a torn tail is trimmed first)."""
        if not self._checked:
            self.repair()
        line = (json.dumps(event, separators=(",", ":"), allow_nan=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def repair(self) -> bool:
        """Trim the file to its last complete line; True when something was cut."""
        self._checked = True
        try:
            fh = open(self.path, "rb+")
        except FileNotFoundError:
            return False
        with fh:
            size = fh.seek(0, os.SEEK_END)
            end = size
            while end > 0:  # find the last newline, reading backwards in blocks
                start = max(0, end - 65536)
                fh.seek(start)
                block = fh.read(end - start)
                nl = block.rfind(b"\n")
                if nl >= 0:
                    end = start + nl + 1
                    break
                end = start
            if end == size:
                return False
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def sync(self) -> None:
        """fsync the log (done with every checkpoint: the log is as durable as the weights)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def truncate_after(self, step: int) -> None:
        """Drop events past step (never checkpointed, or undone by a roll-back): the log has each step once."""
        try:
            lines = self.path.read_bytes().splitlines(keepends=True)
        except FileNotFoundError:
            return
        keep, generation, headers = [], 0, 0
        for line in lines:
            if not line.endswith(b"\n"):
                continue  # a torn last line
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("type") == HEADER:
                number = e.get("generation")
                generation = max(generation, number if isinstance(number, int) else 0)
                headers += 1
            elif e.get("step", 0) <= step or e.get("type") == "started":
                keep.append(line)
        if len(keep) + headers == len(lines):
            return  # nothing to drop: the file (and so its identity to followers) stays as it is
        # A new first line: followers know the file by it (see LogFollower), since the rewritten file may well get
        # the old one's inode back and grow past a follower's offset before it looks again.
        header = json.dumps({"type": HEADER, "generation": generation + 1, "time": time.time()},
                            separators=(",", ":")).encode() + b"\n"
        atomic_write_bytes(self.path, header + b"".join(keep))

    def read(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events from byte offset on, and the offset after the last complete line."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next read
        return parse_lines(data[:end]), offset + end


def scan_lines(data: bytes):
    """(starts, ends, is_step) of the complete lines of data, vectorised (numpy): a million lines in ~0.5 s.

    is_step: the line is a step event ('{"type":"step"' or '{"type": "step"'). Long logs are
    nearly all step lines; a summary or a first look needs only the others and the newest steps.
    """
    import numpy as np

    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10)
    if not len(ends):
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, bool)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    value = starts + 9  # the type's first letter, after '{"type":"' (or '{"type": "', one further)
    value += buf[np.minimum(starts + 8, len(buf) - 1)] == 32
    np.minimum(value, len(buf) - 3, out=value)
    # "ste" begins "step" and no other event type: three bytes a line, compared in bulk. A foreign line
    # taken for a step is harmless: the step parser skips what it cannot read.
    is_step = buf[value] == 115
    is_step &= buf[value + 1] == 116
    is_step &= buf[value + 2] == 101
    return starts, ends, is_step


def line_kind(line: bytes) -> str | None:
    """The event type of a metrics line without parsing it: '{"type":"step",...' -> 'step'."""
    if line.startswith(b'{"type":"'):
        start = 9
    elif line.startswith(b'{"type": "'):
        start = 10
    else:
        return None
    end = line.find(b'"', start)
    return line[start:end].decode("ascii", "replace") if end > 0 else None


def head_of(fh) -> str:
    """A digest of the file's first line (empty while it has none): what tells one log from its rewrite."""
    head = os.pread(fh.fileno(), HEAD_BYTES, 0)
    nl = head.find(b"\n")
    return hashlib.blake2b(head[: nl + 1] if nl >= 0 else b"", digest_size=8).hexdigest() if nl >= 0 else ""


class LogFollower:
    """Incremental reader of a JSON-lines file that may be appended to, replaced or truncated.

    The file is known by (device, inode, its first line): a rewrite often gets the old inode back (ext4 does) and
    may grow past the offset before the next read, so neither the inode nor the size can tell it; every rewrite
    (EventLog.truncate_after) gives the file a new first line.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.identity: tuple[int, int, str] | None = None
        self.offset = 0

    def read_bytes(self, limit: int | None = None) -> tuple[bytes, bool]:
        """(complete lines appended since the last read, reset); reset means they start at the file's beginning."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            reset = self.identity is not None
            self.identity, self.offset = None, 0
            return b"", reset
        with fh:
            st = os.fstat(fh.fileno())
            identity = (st.st_dev, st.st_ino, head_of(fh))
            reset = self.identity is not None and self.offset > 0 and (
                identity != self.identity or st.st_size < self.offset)
            if reset or self.identity is None:
                self.offset = 0
            self.identity = identity
            if st.st_size == self.offset:
                return b"", reset
            fh.seek(self.offset)
            data = fh.read(limit) if limit else fh.read()
        end = data.rfind(b"\n") + 1  # a half-written last line waits for the next read
        self.offset += end
        return data[:end], reset

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """(events appended since the last read, reset), parsed."""
        data, reset = self.read_bytes()
        return parse_lines(data), reset

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


def parse_lines(data: bytes) -> list[dict[str, Any]]:
    """JSON objects of complete lines; a torn or foreign line is skipped."""
    out = []
    for line in data.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
