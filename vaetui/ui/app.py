"""VaeApp: modes switched by single keys, the training worker, and make_app() for the CLI and tests."""

from __future__ import annotations

import gc
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from vaetui.errors import VaeError
from vaetui.runs import Run, RunStore
from vaetui.ui.messages import TrainingEnded, TrainingEvents
from vaetui.ui.screens.dialogs import MIN_HEIGHT, MIN_WIDTH, Confirm, Help, TooSmall
from vaetui.ui.session import Session, TailSession, TrainingSession


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
        Binding("n", "new_run", "new run", show=False),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit_app", "quit"),
        Binding("ctrl+c", "quit_app", "quit", show=False, priority=True),
    ]

    def __init__(self, runs_dir: str | Path | None = None, threads: int | None = None, device: str = "auto",
                 image: str = "halfcell", include_demo: bool = True, start: str = "runs",
                 monitor: str | None = None):
        super().__init__()
        self.store = RunStore(runs_dir, include_demo=include_demo)
        self.threads = threads
        self.device = device
        self.image = image
        self.start_mode = start
        self.monitor_run = monitor
        self.session: TrainingSession | None = None  # the run this app trains, if any
        self._too_small = False
        from vaetui.ui.screens.explore import ModelCache

        self.models = ModelCache()

    # ------------------------------------------------------------------ start-up
    def get_default_screen(self):
        from vaetui.ui.screens.runs import RunsScreen

        return RunsScreen()  # the base of the stack: every other screen sits on top of it

    def on_mount(self) -> None:
        if self.monitor_run:
            try:
                self.open_run(self.monitor_run)
            except VaeError as exc:
                self.notify(str(exc), severity="error")
        elif self.start_mode == "new":
            self.action_new_run()
        self.call_after_refresh(gc.freeze)  # start-up objects never need collecting: no GC pauses later
        self._check_size()

    def on_resize(self, event) -> None:
        self._check_size(event.size)

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
        if self.session is not None:
            self._show_monitor(self.session)
        else:
            self.action_new_run()

    def explore_run(self) -> str | None:
        """The run the explore screens show: the one highlighted in the runs list if it has a checkpoint,
        else the newest run with one (the packaged demo last)."""
        from vaetui.ui.screens.runs import RunsScreen

        base = self.screen_stack[0]
        candidates = []
        if isinstance(base, RunsScreen) and base.selected_name():
            candidates.append(base.selected_name())
        infos = sorted(self.store.infos(), key=lambda i: (not i.read_only, i.updated), reverse=True)
        candidates += [i.name for i in infos]
        for name in candidates:
            try:
                run = self.store.open(name)
            except VaeError:
                continue
            if run.checkpoint_candidates():
                return name
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

    def action_help(self) -> None:
        if not isinstance(self.screen, (Help, TooSmall)):
            self.push_screen(Help())

    def open_run(self, name: str) -> None:
        """Monitor a run: the live one if this app trains it, else by tailing its metrics."""
        if self.session is not None and self.session.run.name == name:
            self._show_monitor(self.session)
            return
        run = self.store.open(name)
        tail = TailSession(run, run.config())
        tail.poll()
        self._show_monitor(tail)

    def _show_monitor(self, session: Session) -> None:
        from vaetui.ui.screens.monitor import MonitorScreen

        self._replace_top(MonitorScreen(session, image=self.image))

    # ------------------------------------------------------------------ training
    def start_training(self, run: Run, resume: bool) -> None:
        """Train run in a worker thread and show its monitor."""
        if self.session is not None and not self.session.finished:
            raise VaeError(f"run {self.session.run.name} is training in this window: stop it first (s)")
        config = run.config()
        if self.device != "auto" and config.train.device != self.device:
            from dataclasses import replace

            config = replace(config, train=replace(config.train, device=self.device))
        session = TrainingSession(run, config, resume=resume, threads=self.threads)
        self.session = session
        self.run_worker(lambda: self._train(session), thread=True, exclusive=True, group="training",
                        exit_on_error=False, name=f"train {run.name}")
        self._show_monitor(session)

    def _train(self, session: TrainingSession) -> None:
        try:
            session.work(lambda events, picture: self.post_message(TrainingEvents(session, events, picture)))
        finally:
            self.post_message(TrainingEnded(session))

    def on_training_events(self, message: TrainingEvents) -> None:
        session = message.session
        for event in message.events:
            session.state.apply(event)
        if message.picture is not None:
            session.picture = message.picture
        screen = self.screen
        if getattr(screen, "session", None) is session and hasattr(screen, "update_view"):
            if any(e.kind in ("state", "finished", "failed", "started") for e in message.events):
                screen.update_view()
            else:
                screen.mark_dirty()

    def on_training_ended(self, message: TrainingEnded) -> None:
        state = message.session.state
        if state.status == "failed":
            self.notify(f"training failed: {state.error}", severity="error", timeout=10)
        elif state.status in ("finished", "stopped"):
            self.notify(f"run {state.run} {state.status} at step {state.step}")
        if getattr(self, "_quit_when_stopped", False):
            self.exit(0)

    # ------------------------------------------------------------------ quitting
    def action_quit_app(self) -> None:
        live = self.session
        if live is None or live.finished:
            self.exit(0)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._quit_when_stopped = True
                live.control.stop()
                live.state.status = "stopping"
                self.notify("saving a checkpoint, then quitting…")

        self.push_screen(Confirm(f"Run {live.run.name} is training. Stop it, save a checkpoint and quit?"), answer)


def make_app(runs_dir: str | Path | None = None, threads: int | None = None, device: str = "auto",
             image: str = "halfcell", include_demo: bool = True, start: str = "runs",
             monitor: str | None = None) -> VaeApp:
    """The app, built the same way for the command line and for tests."""
    return VaeApp(runs_dir=runs_dir, threads=threads, device=device, image=image, include_demo=include_demo,
                  start=start, monitor=monitor)
