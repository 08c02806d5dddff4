"""The live training monitor: progress, sparklines, numbers, reconstructions, system, events."""

from __future__ import annotations

import os
import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Footer, Header, RichLog, Sparkline, Static

from vaetui.console import format_duration
from vaetui.ui.screens.dialogs import ChartScreen, Confirm
from vaetui.ui.session import Session, TailSession, TrainingSession
from vaetui.ui.state import QUIET_AFTER_S, SERIES, SERIES_LABELS
from vaetui.ui.widgets.picture import fit_picture, picture_class

SPARK_POINTS = 120
REDRAW_EVERY_S = 1.0  # what a person reads at a glance; each redraw costs bytes over SSH
PICTURE_EVERY_S = 12.0  # a new picture is the most expensive redraw: at most this often while following
SHORT_LABELS = {"loss": "total", "recon": "recon", "kl": "KL", "valid": "valid"}
PREVIEW_COLUMNS = 8  # the engine's preview batch: images per row of a snapshot
STATUS_STYLE = {"running": "green", "paused": "yellow", "stopping": "yellow", "finished": "cyan",
                "stopped": "yellow", "failed": "red", "interrupted": "yellow", "waiting": "dim"}


def _tail(values: list[float], n: int = SPARK_POINTS) -> list[float]:
    return list(values[-n:])


def bar_text(done: int, total: int, width: int) -> str:
    """A progress bar as text: '━━━━╺────  45%'. Static text: it is redrawn only when it changes."""
    total = max(total, 1)
    frac = min(max(done / total, 0.0), 1.0)
    cells = max(width - 5, 1)
    full = int(frac * cells)
    head = "╺" if full < cells and frac > 0 else ""
    rest = cells - full - len(head)
    return f"[$primary]{'━' * full}{head}[/][dim]{'─' * rest}[/] {frac * 100:3.0f}%"



class Quiet(Static):
    """A Static that redraws only when its text really changes: every repaint costs bytes over SSH."""

    _last: str | None = None

    def set(self, text: str) -> None:
        if text != self._last:
            self._last = text
            self.update(text, layout=False)  # fixed-size in the CSS: no relayout, only this region is resent


class TextBar(Widget):
    """A progress bar drawn as text at its own width; repainted only when its value changes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._value = (0, 1)

    def set(self, done: int, total: int) -> None:
        if (done, total) != self._value:
            self._value = (done, total)
            self.refresh()

    def render(self) -> Text:
        return Text.from_markup(bar_text(*self._value, self.size.width).replace("$primary", "dodger_blue2"))


class EventLog(RichLog, can_focus=False):
    """The event log; never focused, so home/end/arrows stay with the image scrubber."""


class ProcessStats:
    """CPU % and memory of this process from /proc, without extra dependencies."""

    def __init__(self):
        self._last = (time.monotonic(), self._cpu_seconds())

    @staticmethod
    def _cpu_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def sample(self) -> tuple[float, float]:
        now, cpu = time.monotonic(), self._cpu_seconds()
        t0, c0 = self._last
        self._last = (now, cpu)
        pct = 100.0 * (cpu - c0) / max(now - t0, 1e-6)
        try:
            with open("/proc/self/statm") as fh:
                rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            rss = float("nan")
        return pct, rss


class MonitorScreen(Screen[None]):
    """Watches one session: trained here (live) or tailed from another process."""

    BINDINGS = [
        Binding("p", "pause", "pause/resume"),
        Binding("s", "stop", "stop"),
        Binding("c", "checkpoint", "checkpoint"),
        Binding("f", "chart", "chart"),
        Binding("left", "scrub(-1)", "older", show=False),
        Binding("right", "scrub(1)", "newer", show=False),
        Binding("home", "scrub_to(0)", "first", show=False),
        Binding("end", "scrub_to(-1)", "latest", show=False),
    ]

    def __init__(self, session: Session, image: str = "halfcell"):
        super().__init__()
        self.session = session
        self.renderer = image
        self.snapshot_index: int | None = None  # None: follow the newest
        self.stats = ProcessStats()
        self._shown_picture = None
        self._dirty = False
        self._picture_at = 0.0
        self._system_drawn = False
        self._state_seen = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Quiet("", id="status")
        with Horizontal(id="bars"):
            yield Static("epoch", classes="barlabel")
            yield TextBar(id="epochbar", classes="bar")
            yield Static("run", classes="barlabel")
            yield TextBar(id="runbar", classes="bar")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                for key in SERIES:
                    with Horizontal(classes="sparkrow"):
                        yield Quiet(SERIES_LABELS[key], classes="sparklabel", id=f"label-{key}")
                        yield Sparkline([], id=f"spark-{key}", classes="spark")
                yield Quiet("", id="numbers")
                yield Quiet("", id="system")
            with Vertical(id="right"):
                yield Quiet("", id="snaplabel")
                yield picture_class(self.renderer)(None, id="picture")
        yield EventLog(id="log", max_lines=500, wrap=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "vaetui"
        self.sub_title = f"monitor · {self.session.run.name}"
        self._logged = 0
        self.update_view()
        if isinstance(self.session, TailSession):
            self.set_interval(1.0, self._poll)
        self.set_interval(REDRAW_EVERY_S, self._flush)
        self.set_interval(3.0, self._update_system)
        self._update_system()

    def _poll(self) -> None:
        if self.session.poll():
            self.update_view()
        elif self.session.state.status == "running" and self.session.state.quiet_for() > QUIET_AFTER_S:
            self._update_status()  # "quiet for ..." ticks along

    def mark_dirty(self) -> None:
        """New events arrived: redraw at the next tick (status changes redraw at once)."""
        self._dirty = True

    def _flush(self) -> None:
        if self._dirty:
            self._dirty = False
            self.update_view()

    # ------------------------------------------------------------------ drawing
    def update_view(self) -> None:
        """Redraw from the session's state (called at most a few times a second)."""
        s = self.session.state
        self._update_status()
        last = s.last
        spe = max(s.steps_per_epoch, 1)
        self.query_one("#epochbar", TextBar).set(last.epoch_step if last else 0, spe)
        self.query_one("#runbar", TextBar).set(last.step if last else 0, s.total_steps)
        for key in SERIES:
            spark = self.query_one(f"#spark-{key}", Sparkline)
            data = _tail(s.series[key].ys)
            if data != spark.data:
                spark.data = data
            ys = s.series[key].ys
            value = f"{ys[-1]:.1f}" if ys else "-"
            self.query_one(f"#label-{key}", Quiet).set(f"{SHORT_LABELS[key]:<6}[b]{value:>9}[/]")
        self._update_numbers()
        self._update_picture()
        log = self.query_one(RichLog)
        if s is not self._state_seen:  # the run's log was rewritten (a resume): its history is read afresh
            self._state_seen = s
            log.clear()
            self._logged = 0
        for line in s.log[self._logged:]:
            log.write(line)
        self._logged = len(s.log)

    def _update_status(self) -> None:
        s = self.session.state
        style = STATUS_STYLE.get(s.status, "")
        status = s.status
        if isinstance(self.session, TailSession) and s.status == "running":
            quiet = s.quiet_for()
            status = "running elsewhere" + (f", quiet for {format_duration(quiet)}" if quiet > QUIET_AFTER_S else "")
        parts = [f"[b]{s.run}[/]", f"[{style}]● {status}[/]"]
        last = s.last
        if last:
            parts += [f"epoch {last.epoch}/{s.epochs}", f"step {last.step}/{s.total_steps}",
                      f"{last.images_per_s:.0f} img/s", f"elapsed {format_duration(last.elapsed)}"]
            eta = s.eta_seconds()
            if eta is not None:
                parts.append(f"ETA {format_duration(eta)}")
        if s.error:
            parts.append(f"[red]{s.error}[/]")
        self.query_one("#status", Quiet).set("  ".join(parts))

    def _update_numbers(self) -> None:
        s, last = self.session.state, self.session.state.last
        if last is None:
            self.query_one("#numbers", Quiet).set("[dim]waiting for the first steps…[/]")
            return
        v = s.series["valid"].ys
        valid = f"{v[-1]:.2f}" if v else "-"
        self.query_one("#numbers", Quiet).set(
            f"loss/img [b]{last.loss:.2f}[/]  valid {valid}\n"
            f"nats/dim {last.nats_per_dim:.4f}  bits/dim {last.bits_per_dim:.4f}\n"
            f"KL {last.kl:.2f}  β {last.beta:.3g}  lr {last.lr:.3g}"
            + (f"  [red]non-finite {last.nonfinite}[/]" if last.nonfinite else "")
        )

    def _update_system(self) -> None:
        if self.session.state.status not in ("running", "waiting") and self._system_drawn:
            return  # idle: send nothing
        self._system_drawn = True
        cpu, rss = self.stats.sample()
        line = f"[dim]cpu {cpu:.0f}%  mem {rss:.0f} MB"
        if self.session.state.device.startswith("cuda"):
            line += "  " + _gpu_line()
        self.query_one("#system", Quiet).set(line + "[/]")

    def _update_picture(self) -> None:
        snaps = self.session.state.snapshots
        label = self.query_one("#snaplabel", Quiet)
        if self.snapshot_index is None:
            following = self.session.state.status == "running" and self._shown_picture is not None
            if following and time.monotonic() - self._picture_at < PICTURE_EVERY_S:
                return
            picture = self.session.picture
            if picture is None and snaps:
                picture = self.session.snapshot_picture(len(snaps) - 1)
                self.session.picture = picture
            where = f"step {snaps[-1][0]} (latest)" if snaps else "no images yet"
        else:
            picture = self.session.snapshot_picture(self.snapshot_index)
            step = snaps[self.snapshot_index][0] if snaps else 0
            where = f"step {step} ({self.snapshot_index + 1}/{len(snaps)})"
        label.set(f"{where} [dim]· originals, reconstructions, samples · ←/→[/]")
        if picture is not None and picture is not self._shown_picture:
            self._shown_picture = picture
            self._picture_at = time.monotonic()
            self._fit_picture()

    def on_resize(self) -> None:
        if self._shown_picture is not None:
            self._fit_picture()

    def _fit_picture(self) -> None:
        """Show as many image columns as stay recognisable, at the picture's own aspect ratio."""
        picture = self._shown_picture
        box = self.query_one("#right")
        cols_avail, rows_avail = box.size.width - 2, box.size.height - 1
        if cols_avail < 4 or rows_avail < 2:
            return
        n = PREVIEW_COLUMNS
        tile = (picture.width - 2) / n
        keep = max(2, min(n, int(cols_avail // 14)))  # at least ~12 cells per face
        picture = picture.crop((0, 0, round(2 + keep * tile), picture.height))
        fit_picture(self.query_one("#picture"), picture, cols_avail, rows_avail)

    # ------------------------------------------------------------------ actions
    def _live(self) -> TrainingSession | None:
        if isinstance(self.session, TrainingSession) and not self.session.finished:
            return self.session
        self.notify("this run is not being trained by this window", severity="warning")
        return None

    def action_pause(self) -> None:
        if live := self._live():
            paused = live.control.toggle_pause()
            live.state.status = "paused" if paused else "running"
            self._update_status()

    def action_stop(self) -> None:
        if live := self._live():
            def answer(yes: bool | None) -> None:
                if yes:
                    live.control.stop()
                    live.state.status = "stopping"
                    self._update_status()
            self.app.push_screen(Confirm("Stop training? A checkpoint is saved; resume it later from the runs list."),
                                 answer)

    def action_checkpoint(self) -> None:
        if live := self._live():
            live.control.checkpoint()
            self.notify("checkpoint requested")

    def action_chart(self) -> None:
        self.app.push_screen(ChartScreen(self.session.state))

    def action_scrub(self, delta: int) -> None:
        n = len(self.session.state.snapshots)
        if not n:
            return
        current = n - 1 if self.snapshot_index is None else self.snapshot_index
        new = max(0, min(n - 1, current + delta))
        self.snapshot_index = None if new == n - 1 else new
        self._shown_picture, self._picture_at = None, 0.0
        self._update_picture()

    def action_scrub_to(self, where: int) -> None:
        n = len(self.session.state.snapshots)
        if n:
            self.snapshot_index = None if where == -1 or n == 1 else 0
            self._shown_picture, self._picture_at = None, 0.0
            self._update_picture()


def _gpu_line() -> str:
    try:
        import torch

        used = torch.cuda.memory_allocated() / 2**20
        total = torch.cuda.get_device_properties(0).total_memory / 2**20
        util = ""
        try:
            util = f" util {torch.cuda.utilization()}%"
        except Exception:  # needs pynvml; memory alone is still useful
            pass
        return f"gpu mem {used:.0f}/{total:.0f} MB{util}"
    except Exception:
        return "gpu ?"
