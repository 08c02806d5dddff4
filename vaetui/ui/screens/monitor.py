"""The live training monitor: progress, sparklines, numbers, reconstructions, system, events.

It draws a RunView (vaetui.ui.feeds) and nothing else: the same screen for a run trained
in this window and one followed from another process. It has no polling timer: the app
tells it when the view changed, and it redraws at most once a second (a state change at
once). Intents (pause, stop, checkpoint) go to whichever process trains the run through
the run's control file (vaetui.train.control); what the run does comes back as events.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Static

from vaetui.errors import VaeError
from vaetui.format import duration
from vaetui.runs.history import SERIES, SERIES_LABELS, TERM_LABELS
from vaetui.runs.status import status_of
from vaetui.train.control import Intent
from vaetui.ui.feeds import RunView
from vaetui.ui.screens.dialogs import ChartScreen, Confirm
from vaetui.ui.screens.snapshots import SnapshotPane
from vaetui.ui.widgets.picture import picture_class
from vaetui.ui.widgets.heatmap import ACTIVE_KL, HeatMap, Schedule
from vaetui.ui.widgets.spark import Spark
from vaetui.ui.widgets.text import EventLog, Quiet, TextBar
from vaetui.ui.widgets.keybar import KeyBar

REDRAW_EVERY_S = 1.0  # what a person reads at a glance; each redraw costs bytes over SSH
QUIET_AFTER_S = 60.0  # a followed run that wrote nothing for this long is marked quiet
SHORT_LABELS = {"loss": "total", "recon": "recon", "kl": "KL", "valid": "valid"}
SPARK_COLOURS = {"loss": "dodger_blue2", "recon": "dodger_blue2", "kl": "dodger_blue2", "valid": "magenta"}
TERM_ROWS = 3  # sparklines for a family's own loss terms (β-TCVAE has three: MI, TC, dimension-wise KL)
TERM_COLOUR = "dark_orange"
STATUS_STYLE = {"running": "green", "paused": "yellow", "finished": "cyan", "stopped": "yellow", "failed": "red",
                "damaged": "red", "interrupted": "yellow", "new": "dim"}


def shown_status(view: RunView) -> str:
    """The status word and where the run trains, from the events and the feed's liveness."""
    h = view.history
    status = str(status_of(h.status, view.alive))
    if view.alive and view.where not in ("", "here"):
        where = "elsewhere" if view.where == "elsewhere" else f"on {view.where}"
        status = f"{status} {where}"
        quiet = time.time() - h.updated if h.updated else 0
        if quiet > QUIET_AFTER_S:
            status += f", quiet for {int(quiet // 60)}m"
    if "start" in view.pending:
        status += " · starting…"
    elif Intent.STOP in view.pending:
        status += " · stopping…"
    elif Intent.PAUSE in view.pending:
        status += " · pausing…"
    return status


class MonitorScreen(SnapshotPane, Screen[None]):
    """Watches one run's view."""

    BINDINGS = [
        Binding("p", "pause", "pause/resume"),
        Binding("s", "stop", "stop"),
        Binding("c", "checkpoint", "checkpoint"),
        Binding("f", "chart", "chart"),
        Binding("k", "heat", "KL per dim"),
        Binding("enter", "zoom", "zoom picture"),
        Binding("left", "scrub(-1)", "older", show=False),
        Binding("right", "scrub(1)", "newer", show=False),
        Binding("home", "scrub_to(0)", "first", show=False),
        Binding("end", "scrub_to(-1)", "latest", show=False),
    ]

    def __init__(self, view: RunView, image: str = "halfcell"):
        super().__init__()
        self.view = view
        self.renderer = image
        self.snapshot_index: int | None = None  # None: follow the newest
        self._history_seen = None
        self._logged = 0
        self._shown_picture = None
        self._picture_at = 0.0
        self._drawn_at = 0.0
        self._timer = None
        self.heat_shown = False
        self._schedule_cache = None
        self.digest: str | None = None  # what the run did since this person last looked ("": nothing; shown once)

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
                        yield Spark(SPARK_COLOURS[key], id=f"spark-{key}", classes="spark")
                for i in range(TERM_ROWS):  # shown when the run's family logs terms of its own
                    with Horizontal(classes="sparkrow", id=f"termrow-{i}"):
                        yield Quiet("", classes="sparklabel", id=f"label-term-{i}")
                        yield Spark(TERM_COLOUR, id=f"spark-term-{i}", classes="spark")
                yield Quiet("", id="numbers")
                yield Quiet("", id="system")
            with Vertical(id="right"):
                yield Quiet("", id="snaplabel")
                yield picture_class(self.renderer)(None, id="picture")
                yield HeatMap(id="heat")
        with Vertical(id="logbox"):
            yield EventLog(id="log", max_lines=500, wrap=False, markup=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = "vaetui"
        self.sub_title = f"monitor · {self.view.run}"
        self.update_view()

    def on_unmount(self) -> None:
        self._remember_look()
        self.app.monitor_closed(self.view.run)

    def _since_you_left(self, history) -> None:
        """The first look at this run's monitor after being away: what it did meanwhile, as a toast."""
        from vaetui.runs.digest import digest, last_look

        try:
            path = self.app.store.open(self.view.run).path
        except VaeError:
            return
        text = digest(history, last_look(path, "monitor"))
        self.digest = text or ""
        if text:
            self.notify(text, title=self.view.run, timeout=20)

    def _remember_look(self) -> None:
        """What this person saw of the run, in their cache (never in the run)."""
        from vaetui.runs.digest import key, look_of, remember

        try:
            path = self.app.store.open(self.view.run).path
        except VaeError:
            return
        if self.view.history.events:
            remember({key(path, "monitor"): look_of(self.view.history)})

    # ------------------------------------------------------------------ drawing
    def view_changed(self, urgent: bool = False) -> None:
        """The app folded something into the view: redraw now (urgent) or within REDRAW_EVERY_S."""
        wait = REDRAW_EVERY_S - (time.monotonic() - self._drawn_at)
        if urgent or wait <= 0:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self.update_view()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._deferred)

    def _deferred(self) -> None:
        self._timer = None
        self.update_view()

    def update_view(self) -> None:
        """Redraw from the view (at most about once a second)."""
        self._drawn_at = time.monotonic()
        h = self.view.history
        self._update_status()
        last = h.last
        self.query_one("#epochbar", TextBar).set(last.epoch_step if last else 0, max(h.steps_per_epoch, 1))
        self.query_one("#runbar", TextBar).set(last.step if last else 0, h.total_steps)
        for key in SERIES:
            self.query_one(f"#spark-{key}", Spark).set(*h.series[key].points())
            value = h.series[key].last
            shown = "-" if value is None else f"{value:.1f}"
            extra = self._active_text() if key == "kl" else ""
            self.query_one(f"#label-{key}", Quiet).set(f"{SHORT_LABELS[key]:<6}[b]{shown:>9}[/]{extra}")
        self._update_terms()
        self._update_numbers()
        self._update_system()
        self._update_picture()
        if self.heat_shown:
            self._update_heat()
        log = self.query_one(EventLog)
        if h is not self._history_seen:  # a new history (the log was rewritten, or fully loaded): shown afresh
            if self.digest is None and h.events:  # the first history with the run's events in it
                self._since_you_left(h)
            self._history_seen = h
            log.clear()
            self._logged = max(0, h.log_count - len(h.log))
        self._logged = log.show(h.log, h.log_count, self._logged)

    def _active_text(self) -> str:
        """Under the KL sparkline's number: how many dimensions carry information now (KL above 0.01 nats)."""
        last = self.view.history.kl_dims.last
        if not last:
            return ""
        active = sum(v >= ACTIVE_KL for v in last)
        return f"\n[dim]active[/] [{'green' if active else 'red'}]{active}/{len(last)}[/]"

    def _update_heat(self) -> None:
        h = self.view.history
        cols = h.kl_dims
        self.query_one("#heat", HeatMap).set_columns(cols.steps(), cols.matrix(), self._schedule(), h.total_steps)

    def _schedule(self) -> Schedule:
        if self._schedule_cache is None:
            try:
                config = self.app.store.open(self.view.run).config()
            except VaeError:
                return Schedule()
            # the cycles split the planned epochs' steps, as the trainer's β does (not a --max-steps cut)
            schedule = Schedule.of(config, config.train.epochs * self.view.history.steps_per_epoch)
            if not self.view.history.events:
                return schedule  # the run's steps per epoch are not known yet: not kept
            self._schedule_cache = schedule
        return self._schedule_cache

    def action_heat(self) -> None:
        """k: the right-hand side shows KL per latent dimension over the run instead of the pictures (and back)."""
        self.heat_shown = not self.heat_shown
        self.query_one("#picture").display = not self.heat_shown
        self.query_one("#heat").display = self.heat_shown
        label = self.query_one("#snaplabel", Quiet)
        if self.heat_shown:
            label.set("KL per latent dimension over the run [dim]· k pictures[/]")
            self.call_after_refresh(self._update_heat)
        else:
            self._shown_picture = None  # drawn again at the size it has now
            self._update_picture()

    def _update_terms(self) -> None:
        """The family's own terms (IWAE's bound, β-TCVAE's MI, TC and dimension-wise KL, FactorVAE's TC)."""
        terms = list(self.view.history.terms.items())[:TERM_ROWS]
        for i in range(TERM_ROWS):
            row = self.query_one(f"#termrow-{i}")
            row.display = i < len(terms)
            if i < len(terms):
                name, series = terms[i]
                value = series.last
                shown = "-" if value is None else f"{value:.1f}"
                self.query_one(f"#label-term-{i}", Quiet).set(f"{TERM_LABELS.get(name, name)[:6]:<6}[b]{shown:>9}[/]")
                self.query_one(f"#spark-term-{i}", Spark).set(*series.points())

    def _update_status(self) -> None:
        h, view = self.view.history, self.view
        status = shown_status(view)
        style = STATUS_STYLE.get(status.split()[0], "")
        parts = [f"[b]{view.run}[/]", f"[{style}]● {status}[/]"]
        last = h.last
        if last:
            parts += [f"epoch {last.epoch}/{h.epochs_planned}", f"step {last.step}/{h.total_steps}",
                      f"{last.images_per_s:.0f} img/s", f"elapsed {duration(last.elapsed)}"]
            eta = h.eta_seconds()
            if eta is not None and view.alive:
                parts.append(f"ETA {duration(eta)}")
        if h.error:
            parts.append(f"[red]{h.error}[/]")
        self.query_one("#status", Quiet).set("  ".join(parts))

    def _update_numbers(self) -> None:
        h = self.view.history
        last = h.last
        if last is None:
            self.query_one("#numbers", Quiet).set("[dim]waiting for the first steps…[/]")
            return
        v = h.series["valid"].last
        valid = "-" if v is None else f"{v:.2f}"
        self.query_one("#numbers", Quiet).set(
            f"loss/img [b]{last.loss:.2f}[/]  valid {valid}\n"
            f"nats/dim {last.nats_per_dim:.4f}  bits/dim {last.bits_per_dim:.4f}\n"
            f"KL {last.kl:.2f}  β {last.beta:.3g}  lr {last.lr:.3g}"
            + (f"  [red]non-finite {last.nonfinite}[/]" if last.nonfinite else "")
        )

    def _update_system(self) -> None:
        stats, last = self.view.stats, self.view.history.last
        gpu = f"  gpu mem {last.gpu_mem_mb:.0f} MB" if last is not None and last.gpu_mem_mb is not None else ""
        if stats is not None:
            self.query_one("#system", Quiet).set(f"[dim]{stats.line()}{gpu}[/]")
        elif self.view.alive and self.view.where not in ("here", "elsewhere"):
            self.query_one("#system", Quiet).set(f"[dim]trained on {self.view.where}[/]")

    # ------------------------------------------------------------------ intents
    def _control(self):
        """The run's control file, while a trainer holds the run (any trainer: this window's, another terminal's,
        another host's on a shared filesystem)."""
        from vaetui.train.control import ControlFile

        if self.view.alive:
            return ControlFile(self.app.store.open(self.view.run).path)
        self.notify("this run is not training: resume it from the runs list (c)", severity="warning")
        return None

    def action_pause(self) -> None:
        if control := self._control():
            control.resume() if self.view.history.status == "paused" else control.pause()
            self.view.pending.append(Intent.PAUSE)
            self._update_status()

    def action_stop(self) -> None:
        if control := self._control():
            def answer(yes: bool | None) -> None:
                if yes:
                    control.stop()
                    self.view.pending.append(Intent.STOP)
                    self._update_status()
            self.app.push_screen(Confirm("Stop training? A checkpoint is saved; resume it later from the runs list."),
                                 answer)

    def action_checkpoint(self) -> None:
        if control := self._control():
            control.checkpoint()
            self.notify("checkpoint requested")

    def action_chart(self) -> None:
        self.app.push_screen(ChartScreen(self.view.history, schedule=self._schedule()))
