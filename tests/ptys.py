"""A child process on a pseudo-terminal, read back as a terminal would, answering its queries."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time


def run_on_pty(argv, env, answer, seconds: float = 12.0, cols: int = 120, rows: int = 40, log=None,
               after: bytes | None = None, typed: list[tuple[float, bytes]] = ()) -> bytes:
    """Run argv on a pty, answering its terminal queries with answer(query) -> bytes; return all it wrote.

    With a list as log, each chunk read is appended to it as (seconds since start, bytes). typed: keys
    to type, (seconds after `after` was first written, bytes); seconds counts from then too, when given.
    """
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * 10, rows * 20))
    out = b""
    start = time.monotonic()
    end = start + seconds
    answered = 0
    pending = sorted(typed)
    seen = None if after else start
    try:
        while time.monotonic() < end:
            if seen is not None:
                while pending and time.monotonic() >= seen + pending[0][0]:
                    os.write(fd, pending.pop(0)[1])
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            out += chunk
            if seen is None and after in out:
                seen = time.monotonic()
                end = seen + seconds
            if log is not None:
                log.append((time.monotonic() - start, chunk))
            reply = answer(out[answered:])
            if reply:
                answered = len(out)
                os.write(fd, reply)
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    return out


def typed_at_launch(argv, env, typed: bytes, timeout: float = 30.0, cols: int = 100, rows: int = 30):
    """Start argv on a pty and type `typed` at once, before it has drawn anything.

    Returns (exit status, or None if it still ran after timeout seconds; all it wrote).
    """
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.write(fd, typed)
    out, status = b"", None
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                out += chunk
                if b"\x1b[c" in chunk:
                    os.write(fd, b"\x1b[?62;c")
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(code)
                break
    finally:
        if status is None:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    return status, out
