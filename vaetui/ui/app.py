"""VaeApp: modes switched by single keys, the runs it follows and the trainer it started, and make_app() for the
CLI and tests."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, get_current_worker

from vaetui.errors import VaeError
from vaetui.runs.store import Run, RunStore
from vaetui.ui.screens.dialogs import MIN_HEIGHT, MIN_WIDTH, Choose, TooSmall, help_shown, open_help

if TYPE_CHECKING:  # the feeds (and PIL) load with the first monitor, not before the first frame
    import subprocess

    from vaetui.ui.feeds import RunView
    from vaetui.runs.alerts import Alert
    from vaetui.ui.messages import HistoryLoaded, RunAlert, RunAlive, RunEvents, TrainerExited


class VaeApp(App[int]):
    """The vaetui terminal app."""

    CSS_PATH = "app.tcss"
    TITLE = "vaetui"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("t", "train", "train"),
        Binding("u", "show_runs", "runs"),
        Binding("g", "explore('generate')", "generate"),
        Binding("i", "explore('interpolate')", "interpolate"),
        Binding("r", "explore('reconstruct')", "reconstruct"),
        Binding("d", "explore('data')", "data"),
        Binding("z", "explore('latent')", "latent"),
        Binding("y", "study", "study"),
        Binding("n", "new_run", "new run", show=False),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit_app", "quit"),
        Binding("ctrl+c", "quit_app", "quit", show=False, priority=True),
    ]

    def __init__(self, runs_dir: str | Path | None = None, threads: int | None = None, device: str = "auto",
                 image: str = "halfcell", include_demo: bool = True, start: str = "runs",
                 monitor: str | None = None, colors: str = "auto"):
        super().__init__()
        from vaetui.ui.patches import occlusion
        from vaetui.ui.patches import wire
        from vaetui.ui.widgets.picture import HalfBlockImage, color_mode

        wire.install()  # a partial refresh sends only its cells
        occlusion.install()  # a widget hidden behind another is not rendered

        HalfBlockImage.colors = color_mode(colors)
        self.store = RunStore(runs_dir, include_demo=include_demo)
        self.threads = threads
        self.device = device
        self.image = image
        self.start_mode = start
        self.monitor_run = monitor
        self.trainer: tuple[str, subprocess.Popen] | None = None  # the run this window started training, its process
        self.views: dict[str, RunView] = {}  # runs on screen, by name
        self._tails: dict[str, Worker] = {}  # workers following other processes' runs
        self._quit_when_stopped = False
        self._too_small = False
        from vaetui.runs.alerts import Deliverer, notify_command
        from vaetui.ui.models import ModelCache

        self.models = ModelCache()
        # Alerts of the runs this window follows: the bell, a desktop notification, tmux, the person's command.
        self.deliver = Deliverer(notify_command(), write=self._to_terminal,
                                 on_error=lambda m: self.call_from_thread(self.notify, m, severity="warning"))
        self.alerts: list[Alert] = []  # what this window has said, newest last

    # ------------------------------------------------------------------ start-up
    def get_default_screen(self):
        from vaetui.ui.screens.runs import RunsScreen

        return RunsScreen()  # the base of the stack: every other screen sits on top of it

    def on_mount(self) -> None:
        # Worker threads fold logs and load models in Python: let the UI thread take the GIL back within 1 ms
        # (the default 5 ms, several times per key press, made presses take 50-300 ms beside a busy worker).
        sys.setswitchinterval(0.001)
        if self.monitor_run:
            try:
                self.open_run(self.monitor_run)
            except VaeError as exc:
                self.notify(str(exc), severity="error")
        elif self.start_mode == "new":
            self.action_new_run()
        self.call_after_refresh(self._started)
        self._check_size()

    @staticmethod
    def _started() -> None:
        """The first frame is drawn: start-up objects never need collecting (no GC pauses later); collect again."""
        gc.freeze()
        gc.enable()  # run_tui turned collection off for the start-up

    def on_resize(self, event) -> None:
        self._check_size(event.size)
        if (box := help_shown(self.screen)) is not None:  # a hidden box is placed when it is shown
            box.call_after_refresh(box.place)

    def _check_size(self, size=None) -> None:
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        if small and not self._too_small:
            self._too_small = True
            self.push_screen(TooSmall())
        elif not small and self._too_small:
            self._too_small = False
            if isinstance(self.screen, TooSmall):
                self.pop_screen()

    # ------------------------------------------------------------------ navigation
    def _replace_top(self, screen) -> None:
        """Show screen above the runs list (the base screen), dropping what was above it."""
        if self._too_small:
            return
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(screen)

    def action_show_runs(self) -> None:
        while len(self.screen_stack) > 1 and not self._too_small:
            self.pop_screen()

    def action_new_run(self) -> None:
        from vaetui.ui.screens.form import NewRunScreen

        self._replace_top(NewRunScreen())

    def action_train(self) -> None:
        if self.training_here():
            self.open_run(self.trainer[0], own_pid=self.trainer[1].pid)
        else:
            self.action_new_run()

    def explore_run(self) -> str | None:
        """The run the explore screens show: the one highlighted in the runs list if it has a checkpoint,
        else the newest run with one (the packaged demo last). Uses the runs list's summaries: no folding here."""
        from vaetui.ui.screens.runs import RunsScreen

        base = self.screen_stack[0]
        candidates = []
        if isinstance(base, RunsScreen) and base.selected_name():
            candidates.append(base.selected_name())
        infos = list(base.infos or []) if isinstance(base, RunsScreen) else []
        candidates += [i.name for i in sorted(infos, key=lambda i: (not i.read_only, i.updated), reverse=True)]
        if not infos:
            candidates += self.store.names()[::-1]
        for name in candidates:
            try:
                if self.store.open(name).has_checkpoint():
                    return name
            except VaeError:
                continue
        return None

    def action_explore(self, what: str) -> None:
        from vaetui.ui.screens import explore

        name = self.explore_run()
        if name is None:
            self.notify("no run with a checkpoint yet: train one first (n)", severity="warning")
            return
        screen = {"generate": explore.GenerateScreen, "interpolate": explore.InterpolateScreen,
                  "reconstruct": explore.ReconstructScreen, "data": explore.DataScreen,
                  "latent": explore.LatentScreen}[what](name)
        self._replace_top(screen)

    def action_study(self) -> None:
        """The study of the run highlighted in the runs list, else the newest study here."""
        from vaetui.ui.screens.runs import RunsScreen
        from vaetui.ui.screens.study import StudyScreen, studies, study_of

        base = self.screen_stack[0]
        highlighted = base.selected_name() if isinstance(base, RunsScreen) else None
        name = (study_of(highlighted, self.store.root) if highlighted else None) or next(
            iter(studies(self.store.root)), None)
        if name is None:
            self.notify("no study here yet: run one with vaetui sweep latent", severity="warning")
            return
        self._replace_top(StudyScreen(name))

    async def on_event(self, event) -> None:
        if isinstance(event, events.Key) and (box := help_shown(self.screen)) is not None:
            box.key(event.key)  # the help has every key while it is open (it takes no focus: see Help)
            return
        await super().on_event(event)

    def action_help(self) -> None:
        if not isinstance(self.screen, TooSmall):
            open_help(self.screen)

    # ------------------------------------------------------------------ runs on screen: one flow
    def open_run(self, name: str, own_pid: int | None = None) -> None:
        """Monitor a run by following its log, whoever trains it (own_pid: the trainer this window started)."""
        from vaetui.runs.history import History
        from vaetui.ui.feeds import RunView, TailFeed

        view = self.views.get(name)
        if view is None:
            run = self.store.open(name)
            view = self.views[name] = RunView(name, History(name, run.config().train.epochs))
            feed = TailFeed(run, run.config(), own_pid)

            def follow() -> None:
                worker = get_current_worker()
                feed.work(self.post_message, lambda: worker.is_cancelled)

            self._tails[name] = self.run_worker(follow, thread=True, group=f"tail {name}", exit_on_error=False,
                                                name=f"follow {name}")
        self._show_monitor(view)

    def monitor_closed(self, name: str) -> None:
        """A monitor went away: stop following its run (the run this window trains stays followed)."""
        if any(getattr(s, "view", None) is self.views.get(name) for s in self.screen_stack[:-1]):
            return
        if self.trainer is not None and self.trainer[0] == name and self.trainer[1].poll() is None:
            return
        self._forget(name)

    def _forget(self, name: str) -> None:
        worker = self._tails.pop(name, None)
        if worker is not None:
            worker.cancel()
        self.views.pop(name, None)

    def _show_monitor(self, view: RunView) -> None:
        from vaetui.ui.screens.monitor import MonitorScreen

        self._replace_top(MonitorScreen(view, image=self.image))

    def _changed(self, run: str, urgent: bool) -> None:
        if not self.is_running:  # closing: the screens lose their widgets while the queue is still read
            return
        screen = self.screen
        if getattr(screen, "view", None) is self.views.get(run) and hasattr(screen, "view_changed"):
            screen.view_changed(urgent)

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        view = self.views.get(message.run)
        if view is not None:
            view.history = message.history
            view.picture = message.picture or view.picture
            self._changed(message.run, urgent=True)

    def on_run_events(self, message: RunEvents) -> None:
        view = self.views.get(message.run)
        if view is None:
            return
        view.fold(message.events)
        from vaetui.runs.alerts import alert_of

        for event in message.events:
            if (alert := alert_of(event, message.run)) is not None:
                self.alert(alert)
        if message.picture is not None:
            view.picture = message.picture
        urgent = any(e.kind in ("state", "finished", "failed", "started") for e in message.events)
        self._changed(message.run, urgent)

    def on_run_alert(self, message: RunAlert) -> None:
        self.alert(message.alert)

    def alert(self, alert: Alert) -> None:
        """Tell the person, wherever they are: a toast here, and the bell, desktop, tmux and their command."""
        self.alerts.append(alert)
        severity = "information" if alert.kind == "finished" else "error" if alert.kind == "failed" else "warning"
        self.notify(alert.line, title=alert.kind, severity=severity, timeout=10)
        self.deliver(alert)

    def _to_terminal(self, text: str) -> None:
        from vaetui.ui.patches.wire import write_raw

        write_raw(self, text)

    def on_run_alive(self, message: RunAlive) -> None:
        view = self.views.get(message.run)
        if view is not None:
            view.alive, view.where = message.alive, message.where
            view.stats = message.stats or (view.stats if message.alive else None)
            self._changed(message.run, urgent=False)

    # ------------------------------------------------------------------ training: a child process, followed
    @property
    def training_view(self) -> RunView | None:
        """The view of the run this window started training (while it is on screen or still training)."""
        return self.views.get(self.trainer[0]) if self.trainer is not None else None

    def training_here(self) -> bool:
        return self.trainer is not None and self.trainer[1].poll() is None

    def start_training(self, run: Run) -> None:
        """Train run in a `vaetui train` process of its own and show its monitor.

        The process is in a session of its own: it outlives this window (a dropped SSH
        connection does not stop it) and shares neither the GIL nor the cores' thread pools
        with the UI. A new run starts from its first step; a stopped one from its newest
        checkpoint (the same command for both).
        """
        from vaetui.train.process import spawn_trainer

        if self.training_here():
            raise VaeError(f"run {self.trainer[0]} is training in this window: stop it first (s)")
        if (trainer := run.live_trainer()) is not None:
            raise VaeError(f"run {run.name} is being trained by pid {trainer.pid} on {trainer.host}: "
                           "open its monitor instead (enter)")
        proc = spawn_trainer(run, self.store.root, threads=self.threads, device=self.device, detach=True)
        self.trainer = (run.name, proc)
        self._forget(run.name)  # a fresh follow: the resumed log is the one to read
        self.open_run(run.name, own_pid=proc.pid)
        view = self.views[run.name]
        view.pending.append("start")
        self.run_worker(lambda: self._wait_for_trainer(run, proc), thread=True, group=f"trainer {run.name}",
                        exit_on_error=False, name=f"wait {run.name}")

    def _wait_for_trainer(self, run: Run, proc) -> None:
        import subprocess

        from vaetui.train.process import last_error
        from vaetui.ui.messages import TrainerExited

        worker = get_current_worker()
        while True:  # polled, not waited on: quitting while it trains on must not wait for it
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if worker.is_cancelled:
                    return
        self.post_message(TrainerExited(run.name, code, last_error(run) if code not in (0, 130) else ""))

    def on_trainer_exited(self, message: TrainerExited) -> None:
        view = self.views.get(message.run)
        if view is not None:
            view.pending.clear()
            self._changed(message.run, urgent=True)
        if message.code not in (0, 130):
            self.notify(f"training {message.run} failed: {message.error or f'exit code {message.code}'}",
                        severity="error", timeout=10)
        elif view is not None and view.history.status in ("finished", "stopped"):
            self.notify(f"run {message.run} {view.history.status} at step {view.history.step}")
        if self._quit_when_stopped:
            self.exit(0)

    # ------------------------------------------------------------------ quitting
    def action_quit_app(self) -> None:
        if not self.training_here():
            self.exit(0)
            return
        name = self.trainer[0]

        def answer(key: str | None) -> None:
            from vaetui.train.control import ControlFile, Intent

            if key == "y":
                self._quit_when_stopped = True
                ControlFile(self.store.open(name).path).stop()
                if name in self.views:
                    self.views[name].pending.append(Intent.STOP)
                self.notify("saving a checkpoint, then quitting…")
            elif key == "b":
                self.exit(0)

        self.push_screen(Choose(f"Run {name} is training. Stop it, save a checkpoint and quit, or leave it "
                                "training in the background (watch it again with vaetui, or vaetui monitor)?",
                                [("y", "stop and quit"), ("b", "keep training, quit")]), answer)


def make_app(runs_dir: str | Path | None = None, threads: int | None = None, device: str = "auto",
             image: str = "halfcell", include_demo: bool = True, start: str = "runs",
             monitor: str | None = None, colors: str = "truecolor") -> VaeApp:
    """The app, built the same way for the command line and for tests (pictures in truecolor unless told)."""
    return VaeApp(runs_dir=runs_dir, threads=threads, device=device, image=image, include_demo=include_demo,
                  start=start, monitor=monitor, colors=colors)
