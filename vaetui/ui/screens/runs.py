"""The runs list: every run with its status; open, resume or start one."""

from __future__ import annotations

import time

import gc
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header
from textual.worker import get_current_worker

from vaetui.errors import VaeError
from vaetui.runs.summaries import RunInfo
from vaetui.ui.screens.dialogs import Ask, Confirm
from vaetui.ui.widgets.text import Quiet
from vaetui.ui.widgets.keybar import KeyBar

SORTS = ("name", "updated", "best valid", "latent", "status")
REFRESH_EVERY_S = 3.0
FIRST_FRAME_BUDGET_S = 0.03  # cached lines listed before the first frame, at most this long (~0.1 ms a run)

COLUMNS = ("run", "model", "preset", "data", "size", "latent", "β", "epochs", "best valid", "status", "updated")


@dataclass
class RunsListed(Message):
    """Summaries from the runs worker (complete=False: the first of a cold start's batches)."""

    infos: tuple[RunInfo, ...]
    complete: bool = True
    digest: str | None = None  # what moved since this person last left the runs list (the first full listing)


class RunsScreen(Screen[None]):
    """A table of runs; enter opens the monitor, c continues (resumes) an interrupted run."""

    BINDINGS = [
        Binding("enter", "open", "open", priority=True),
        Binding("c", "resume", "continue"),
        Binding("n", "app.new_run", "new run"),
        Binding("o", "sort", "sort"),
        Binding("space", "mark", "mark"),
        Binding("v", "compare", "compare marked"),
        Binding("L", "compare(True)", "lockstep marked", show=False),  # in ? (the key bar keeps rename, delete)
        Binding("G", "groups", "group by seed", show=False),
        Binding("m", "rename", "rename"),
        Binding("x", "delete", "delete"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Quiet("", id="runs-hint")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.title, self.sub_title = "vaetui", "runs"
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col)
        self.infos: list[RunInfo] | None = None
        self.sort_by = "name"
        self.marked: set[str] = set()
        self._rows: dict[str, tuple] = {}
        self._listed_at = 0.0
        self._frozen = False
        self._digested = False
        self.digest: str | None = None
        if not self._list_cached():
            self.call_after_refresh(self.refresh_runs)  # after the first frame is painted, not competing with it
        self._timer = self.set_interval(REFRESH_EVERY_S, self.refresh_runs)
        table.focus()

    def on_screen_suspend(self) -> None:
        self._timer.pause()  # hidden under another screen: no reads, no repaints
        self._remember_looks()

    def on_screen_resume(self) -> None:
        if time.monotonic() - self._listed_at > REFRESH_EVERY_S:  # back from a glance at help: no refresh
            self.refresh_runs()
        self._timer.resume()

    def _list_cached(self) -> bool:
        """A warm start: when every run's line is cached for its files as they are, list them now, so the first
        frame shows the runs (not an empty table, then the whole table again a paint later). A run whose
        line is not cached (new, changed, live), or more runs than FIRST_FRAME_BUDGET_S allows, leaves it
        to the worker: False."""
        store, started, infos = self.app.store, time.monotonic(), []
        for name in store.names():
            try:
                info = store.summaries.cached_line(store.open(name))
            except VaeError:
                continue
            if info is None or time.monotonic() - started > FIRST_FRAME_BUDGET_S:
                return False
            infos.append(info)
        self._listed_at = time.monotonic()
        self.on_runs_listed(RunsListed(tuple(infos), complete=True))
        return True

    def refresh_runs(self) -> None:
        """Ask the worker for fresh summaries (they are folded there, from the appended bytes only)."""
        self._listed_at = time.monotonic()
        self._list_runs()

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def _list_runs(self) -> None:
        worker = get_current_worker()
        store = self.app.store
        names = store.names()
        infos, posted = [], time.monotonic()
        for name in names:
            if worker.is_cancelled:
                return
            try:
                infos.append(store.open(name).info(store.summaries))
            except VaeError:
                continue
            if self.infos is None and time.monotonic() - posted > 0.2:  # a cold start fills in as it goes
                self.post_message(RunsListed(tuple(infos), complete=False))
                posted = time.monotonic()
        digest = None
        if not self._digested:  # the first full listing: what moved while this person was away
            from vaetui.runs.digest import key, list_digest, looks

            self._digested = True
            paths = {i.name: store.root / i.name for i in infos if not i.read_only}
            digest = list_digest(infos, looks([key(p, "list") for p in paths.values()]), paths)
        self.post_message(RunsListed(tuple(infos), complete=True, digest=digest))

    def on_unmount(self) -> None:
        self._remember_looks()

    def _remember_looks(self) -> None:
        """What this person saw of each run here, in their cache: the next start says what moved since."""
        from vaetui.runs.digest import key, list_look, remember

        if self.infos:
            remember({key(self.app.store.root / i.name, "list"): list_look(i) for i in self.infos if not i.read_only})

    def on_runs_listed(self, message: RunsListed) -> None:
        if message.digest:
            self.digest = message.digest
            self.notify(message.digest, title="runs", timeout=20)
        first = self.infos is None or not self._frozen
        self.show_runs(list(message.infos))
        if message.complete and first:
            # The summaries are loaded now: keep full collections from walking them (and Textual) again and
            # again, each a pause the next key press would wait for.
            self._frozen = True
            gc.freeze()

    def show_runs(self, infos: list[RunInfo]) -> None:
        """Put summaries in the table: only the cells that changed are redrawn."""
        key = {"updated": lambda i: -i.updated, "name": lambda i: i.name,
               "best valid": lambda i: (i.best_valid is None, i.best_valid or 0.0), "latent": lambda i: i.latent,
               "status": lambda i: i.status}[self.sort_by]
        infos = sorted(infos, key=key)
        table = self.query_one(DataTable)
        rows = {i.name: self._cells(i) for i in infos}
        if [i.name for i in infos] == [i.name for i in self.infos or []]:
            for name, cells in rows.items():
                old = self._rows.get(name)
                for col, value, before in zip(COLUMNS, cells, old or ()):
                    if value != before:
                        table.update_cell(name, col, value)
        else:
            row = table.cursor_row
            table.clear()
            for name, cells in rows.items():
                table.add_row(*cells, key=name)
            if infos:
                table.move_cursor(row=min(row, len(infos) - 1))
        self._rows, self.infos = rows, infos
        hint = (f"{len(infos)} run{'s' if len(infos) != 1 else ''} in {self.app.store.root}, by {self.sort_by}" if infos
                else f"no runs yet in {self.app.store.root}: press n to start one")
        marked = f" · {len(self.marked)} marked: v compares" if self.marked else ""
        self.query_one("#runs-hint", Quiet).set(
            f"[dim]{hint}{marked} · enter open · c continue · space mark · g/i/r/z explore · n new[/]")

    def _cells(self, i: RunInfo) -> tuple:
        mark = "● " if i.name in self.marked else ""
        return (mark + i.name + (" (demo)" if i.read_only else ""), i.model, i.preset, i.data, i.size, str(i.latent),
                f"{i.beta:g}", f"{i.epochs_done}/{i.epochs}", "-" if i.best_valid is None else f"{i.best_valid:.2f}",
                i.status, time.strftime("%m-%d %H:%M", time.localtime(i.updated)))

    def selected_name(self) -> str | None:
        info = self._selected()
        return info.name if info else None

    def _selected(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not self.infos or table.cursor_row is None or table.cursor_row >= len(self.infos):
            return None
        return self.infos[table.cursor_row]

    def action_open(self) -> None:
        info = self._selected()
        if info is None:
            self.app.action_new_run()
            return
        try:
            self.app.open_run(info.name)
        except VaeError as exc:
            self.notify(str(exc), severity="error")

    def action_resume(self) -> None:
        info = self._selected()
        if info is None:
            return
        if info.status in ("running", "finished") or info.read_only:
            why = {"running": "it is running", "finished": "it has finished"}.get(info.status, "it is read-only")
            self.notify(f"cannot resume {info.name}: {why}", severity="warning")
            return
        try:
            self.app.start_training(self.app.store.open(info.name))
        except VaeError as exc:
            self.notify(str(exc), severity="error")

    def action_refresh(self) -> None:
        if self.infos is not None:
            self.show_runs(list(self.infos))  # re-sorted and re-marked at once
        self.refresh_runs()

    def action_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.action_refresh()

    def action_mark(self) -> None:
        info = self._selected()
        if info:
            self.marked.symmetric_difference_update({info.name})
            self.show_runs(list(self.infos))
            table = self.query_one(DataTable)
            table.move_cursor(row=min(table.cursor_row + 1, len(self.infos) - 1))

    def action_groups(self) -> None:
        """Every run grouped with the runs that differ from it only in their seed (vaetui train --seeds)."""
        names = [i.name for i in self.infos or [] if not i.read_only]
        if not names:
            self.notify("no runs to group yet", severity="warning")
            return
        from vaetui.ui.screens.groups import GroupsScreen

        self.app.push_screen(GroupsScreen(names))

    def action_compare(self, lockstep: bool = False) -> None:
        names = [i.name for i in self.infos or [] if i.name in self.marked]
        usable = [n for n in names if self.app.store.open(n).has_checkpoint()]
        if len(usable) < 2 or (lockstep and len(usable) > 4):
            self.notify(f"mark {'two to four' if lockstep else 'two or more'} runs with checkpoints (space), then "
                        f"{'L' if lockstep else 'v'}", severity="warning")
            return
        from vaetui.ui.screens.explore import CompareScreen, LockstepScreen

        self.app.push_screen(LockstepScreen(usable) if lockstep else CompareScreen(usable))

    def _editable(self) -> RunInfo | None:
        info = self._selected()
        if info is None:
            return None
        if info.read_only or info.status == "running":
            self.notify(f"{info.name} is {'read-only' if info.read_only else 'running'}", severity="warning")
            return None
        return info

    def action_rename(self) -> None:
        info = self._editable()
        if info is None:
            return

        def done(new: str | None) -> None:
            if not new or new == info.name:
                return
            try:
                self.app.store.rename(info.name, new)
            except VaeError as exc:
                self.notify(str(exc), severity="error")
                return
            self.marked.discard(info.name)
            self.action_refresh()

        self.app.push_screen(Ask(f"New name for run {info.name}:", info.name), done)

    def action_delete(self) -> None:
        info = self._editable()
        if info is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                try:
                    left = self.app.store.delete(info.name)
                except VaeError as exc:
                    self.notify(str(exc), severity="error")
                    return
                if left:
                    self.notify(f"deleted run {info.name}; kept {', '.join(left[:3])}"
                                f"{' …' if len(left) > 3 else ''} (not a run's) in its folder")
                self.marked.discard(info.name)
                self.action_refresh()

        self.app.push_screen(Confirm(f"Delete run {info.name} and all its checkpoints? This cannot be undone."), done)
