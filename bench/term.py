"""A child process on a pseudo-terminal, read back as a terminal would: what a person pays over SSH."""

from __future__ import annotations

import fcntl
import os
import re
import pty
import select
import struct
import termios
import time


_ESCAPES = re.compile(rb"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")


def plain(data: bytes) -> bytes:
    """data without terminal escape sequences. A partial repaint splits a line wherever the widgets
    beneath it meet (cursor moves, colours), so a phrase is looked for in the text, not in the bytes."""
    return _ESCAPES.sub(b"", data)


class Term:
    """Runs argv on a pty of cols x rows; counts every byte it writes, per second too."""

    def __init__(self, argv, env, cols: int = 120, rows: int = 40):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe(argv[0], argv, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.buf = b""
        self.total = 0
        self.per_second: dict[int, int] = {}
        self.t0 = time.monotonic()

    def read(self, timeout: float) -> bytes:
        out = b""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                break
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            self.total += len(chunk)
            second = int(time.monotonic() - self.t0)
            self.per_second[second] = self.per_second.get(second, 0) + len(chunk)
            # Answer the terminal queries Textual sends, as a terminal would (else it waits for them).
            if b"\x1b[c" in chunk:
                os.write(self.fd, b"\x1b[?62;c")
        self.buf = (self.buf + out)[-400_000:]
        return out

    def shows(self, needle: bytes) -> bool:
        """needle is in what was drawn since buf was last cleared (escape sequences aside)."""
        return needle in self.buf or needle in plain(self.buf)

    def wait_for(self, needle: bytes, timeout: float = 30.0) -> float:
        t0 = time.monotonic()
        while not self.shows(needle):
            if time.monotonic() - t0 > timeout:
                raise SystemExit(f"never saw {needle!r}")
            self.read(0.02)
        return time.monotonic() - t0

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def rss_peak_mb(self) -> float:
        """The child's peak resident memory (VmHWM)."""
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class Freezer:
    """Stops a process and starts it again without a signal it could see (a cgroup v1 freezer).

    SIGSTOP/SIGCONT would do, but Textual repaints the whole screen on SIGCONT (it takes it for the
    end of a Ctrl+Z), which would charge the window for a repaint it never does otherwise. Needs
    root and the v1 freezer hierarchy; `Freezer.make(pid)` returns None without them.
    """

    ROOT = "/sys/fs/cgroup/freezer"

    def __init__(self, pid: int, path: str):
        self.pid, self.path = pid, path

    @classmethod
    def make(cls, pid: int) -> "Freezer | None":
        path = os.path.join(cls.ROOT, f"vaetui-bench-{os.getpid()}")
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                fh.write(str(pid))
        except OSError:
            return None
        return cls(pid, path)

    def _state(self, state: str) -> None:
        with open(os.path.join(self.path, "freezer.state"), "w") as fh:
            fh.write(state)

    def freeze(self) -> None:
        self._state("FROZEN")

    def thaw(self) -> None:
        self._state("THAWED")

    def close(self) -> None:
        """Thaw, move the process back to the root group, remove the group."""
        try:
            self.thaw()
            with open(os.path.join(self.ROOT, "cgroup.procs"), "w") as fh:
                fh.write(str(self.pid))
        except OSError:
            pass
        try:
            os.rmdir(self.path)
        except OSError:
            pass
