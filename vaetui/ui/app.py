"""VaeApp: modes switched by single keys, the training worker, and make_app() for the CLI and tests."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, get_current_worker

from vaetui.errors import VaeError
from vaetui.runs import Run, RunStore
from vaetui.ui.screens.dialogs import MIN_HEIGHT, MIN_WIDTH, Confirm, Help, TooSmall

if TYPE_CHECKING:  # the feeds (and PIL) load with the first monitor, not before the first frame
    from vaetui.ui.feeds import RunView, TrainingFeed
    from vaetui.ui.messages import FeedEnded, HistoryLoaded, RunAlive, RunEvents


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
        from vaetui.ui.widgets.picture import HalfBlockImage, color_mode

        HalfBlockImage.colors = color_mode(colors)
        self.store = RunStore(runs_dir, include_demo=include_demo)
        self.threads = threads
        self.device = device
        self.image = image
        self.start_mode = start
        self.monitor_run = monitor
        self.training: TrainingFeed | None = None  # the run this app trains, if any
        self.views: dict[str, RunView] = {}  # runs on screen, by name
        self._tails: dict[str, Worker] = {}  # workers following other processes' runs
        self._quit_when_stopped = False
        self._too_small = False
        from vaetui.ui.screens.explore import ModelCache

        self.models = ModelCache()

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
        view = self.training_view
        if view is not None:
            self._show_monitor(view)
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

    def action_help(self) -> None:
        if not isinstance(self.screen, (Help, TooSmall)):
            self.push_screen(Help(self.screen))

    # ------------------------------------------------------------------ runs on screen: one flow
    def open_run(self, name: str) -> None:
        """Monitor a run: the one trained in this window, or any other by following its log."""
        from vaetui.history import History
        from vaetui.ui.feeds import RunView, TailFeed

        view = self.views.get(name)
        if view is None:
            run = self.store.open(name)
            view = self.views[name] = RunView(name, History(name, run.config().train.epochs))
            feed = TailFeed(run, run.config())

            def follow() -> None:
                worker = get_current_worker()
                feed.work(self.post_message, lambda: worker.is_cancelled)

            self._tails[name] = self.run_worker(follow, thread=True, group=f"tail {name}", exit_on_error=False,
                                                name=f"follow {name}")
        self._show_monitor(view)

    def monitor_closed(self, name: str) -> None:
        """A monitor went away: stop following its run (a run trained here keeps its view)."""
        if any(getattr(s, "view", None) is self.views.get(name) for s in self.screen_stack[:-1]):
            return
        worker = self._tails.pop(name, None)
        if worker is not None:
            worker.cancel()
            self.views.pop(name, None)

    def _show_monitor(self, view: RunView) -> None:
        from vaetui.ui.screens.monitor import MonitorScreen

        self._replace_top(MonitorScreen(view, image=self.image))

    def _changed(self, run: str, urgent: bool) -> None:
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
        if message.picture is not None:
            view.picture = message.picture
        urgent = any(e.kind in ("state", "finished", "failed", "started") for e in message.events)
        self._changed(message.run, urgent)

    def on_run_alive(self, message: RunAlive) -> None:
        view = self.views.get(message.run)
        if view is not None:
            view.alive, view.where = message.alive, message.where
            view.stats = message.stats or (view.stats if message.alive else None)
            self._changed(message.run, urgent=False)

    def on_feed_ended(self, message: FeedEnded) -> None:
        view = self.views.get(message.run)
        if view is None:
            return
        view.ended = True
        self._changed(message.run, urgent=True)
        if self.training is not None and self.training.run.name == message.run:
            h = view.history
            if h.status == "failed":
                self.notify(f"training failed: {h.error}", severity="error", timeout=10)
            elif h.status in ("finished", "stopped"):
                self.notify(f"run {message.run} {h.status} at step {h.step}")
            if self._quit_when_stopped:
                self.exit(0)

    # ------------------------------------------------------------------ training
    @property
    def training_view(self) -> RunView | None:
        return self.views.get(self.training.run.name) if self.training is not None else None

    def start_training(self, run: Run, resume: bool) -> None:
        """Train run in a worker thread and show its monitor."""
        view = self.training_view
        if view is not None and not view.ended:
            raise VaeError(f"run {view.run} is training in this window: stop it first (s)")
        config = run.config()
        if self.device != "auto" and config.train.device != self.device:
            from dataclasses import replace

            config = replace(config, train=replace(config.train, device=self.device))
        if view is not None:
            self.views.pop(view.run, None)
        from vaetui.history import History
        from vaetui.ui.feeds import RunView, TrainingFeed

        feed = TrainingFeed(run, config, resume=resume, threads=self.threads)
        self.training = feed
        self.views[run.name] = view = RunView(run.name, History(run.name, config.train.epochs), control=feed.control)
        view.alive, view.where = True, "here"
        self.run_worker(lambda: feed.work(self.post_message), thread=True, exclusive=True, group="training",
                        exit_on_error=False, name=f"train {run.name}")
        self._show_monitor(view)

    # ------------------------------------------------------------------ quitting
    def action_quit_app(self) -> None:
        view = self.training_view
        if view is None or view.ended:
            self.exit(0)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._quit_when_stopped = True
                view.control.stop()
                view.pending.append("stop")
                self.notify("saving a checkpoint, then quitting…")

        self.push_screen(Confirm(f"Run {view.run} is training. Stop it, save a checkpoint and quit?"), answer)


def make_app(runs_dir: str | Path | None = None, threads: int | None = None, device: str = "auto",
             image: str = "halfcell", include_demo: bool = True, start: str = "runs",
             monitor: str | None = None, colors: str = "truecolor") -> VaeApp:
    """The app, built the same way for the command line and for tests (pictures in truecolor unless told)."""
    return VaeApp(runs_dir=runs_dir, threads=threads, device=device, image=image, include_demo=include_demo,
                  start=start, monitor=monitor, colors=colors)
