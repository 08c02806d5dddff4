"""CPU and memory of a process from /proc (the trainer's, wherever the monitor runs), without extra dependencies."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    """One reading: CPU % since the previous reading, resident memory (GPU memory comes in the trainer's events)."""

    cpu: float
    rss_mb: float

    def line(self) -> str:
        """What the monitor shows. A process that waits (a paused trainer polls its control file) reads 0, 1
        or 2% by chance at each sample: shown as "<5%", so that a paused run's screen stays still (0 bytes)."""
        cpu = "<5" if self.cpu < 5 else f"{self.cpu:.0f}"
        return f"cpu {cpu}%  mem {self.rss_mb:.0f} MB"


class ProcessStats:
    """Readings of one process (default: this one); None when it cannot be read (gone, another host)."""

    def __init__(self, pid: int | None = None):
        self.pid = pid or os.getpid()
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._last: tuple[float, float] | None = None

    def _cpu_seconds(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self._ticks  # utime + stime
        except (OSError, IndexError, ValueError):
            return None

    def sample(self) -> Stats | None:
        cpu = self._cpu_seconds()
        if cpu is None:
            return None
        now = time.monotonic()
        last, self._last = self._last, (now, cpu)
        pct = 0.0 if last is None else 100.0 * (cpu - last[1]) / max(now - last[0], 1e-6)
        try:
            with open(f"/proc/{self.pid}/statm") as fh:
                rss = int(fh.read().split()[1]) * self._page / 2**20
        except (OSError, ValueError, IndexError):
            rss = float("nan")
        return Stats(pct, rss)
