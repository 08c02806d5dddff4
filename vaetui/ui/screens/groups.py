"""Runs grouped by seed: one row per group of runs that differ only in their seed, each number mean ± std with n
(the table `vaetui export --group-by seed` writes, from the same code); `v` compares a group's runs."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header
from textual.worker import get_current_worker

from vaetui.ui.widgets.keybar import KeyBar
from vaetui.ui.widgets.text import Quiet

COLUMNS = ("run", "model", "latent", "beta", "epochs", "best_valid", "neg_elbo", "psnr", "mig", "fd_attr")


class GroupsScreen(Screen[None]):
    """A table of seed groups; enter or v compares the highlighted group's runs, L puts them in lockstep."""

    BINDINGS = [Binding("enter,v", "compare", "compare group", priority=True),
                Binding("L", "compare(True)", "lockstep group"), Binding("escape", "back", "back")]

    def __init__(self, names: list[str], title: str = "runs"):
        super().__init__()
        self.names, self.what = list(names), title
        self.groups: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Quiet("", id="groups-hint")
        yield DataTable(id="groups", cursor_type="row", zebra_stripes=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.title, self.sub_title = "vaetui", f"{self.what} by seed"
        self.query_one("#groups-hint", Quiet).set("[dim]grouping…[/]")
        self._build()

    @work(thread=True, exclusive=True, group="groups", exit_on_error=False)
    def _build(self) -> None:
        from vaetui.runs.tables import COLUMNS as ALL, build, cells, rows_of

        store = self.app.store
        rows = rows_of(store, [n for n in self.names if not store.open(n).read_only])
        present = [c for c in COLUMNS if c == "run" or any(ALL[c].get(r) is not None for r in rows)]
        table = build(rows, present, "seed")
        head, body = cells(table)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, head, body, table)

    def _show(self, head, body, table) -> None:
        grid = self.query_one(DataTable)
        grid.clear(columns=True)
        for h in head:
            grid.add_column(h)
        for cells in body:
            grid.add_row(*cells)
        self.groups = table.rows
        many = sum(r["n"] > 1 for r in table.rows)
        notes = " · ".join(f"{k}: {v}" for k, v in table.notes.items())
        self.query_one("#groups-hint", Quiet).set(
            f"[dim]{len(table.rows)} groups of {len(self.names)} runs ({many} with more than one seed); mean ± sample "
            f"std over the n runs that differ only in their seed · {notes}[/]")
        grid.focus()

    def action_compare(self, lockstep: bool = False) -> None:
        grid = self.query_one(DataTable)
        if not self.groups or grid.cursor_row is None:
            return
        members = self.groups[grid.cursor_row]["members"]
        usable = [n for n in members if self.app.store.open(n).has_checkpoint()]
        if len(usable) < 2 or (lockstep and len(usable) > 4):
            self.notify(f"this group has {len(usable)} runs with checkpoints: "
                        f"{'lockstep takes two to four' if lockstep else 'comparing takes two or more'}",
                        severity="warning")
            return
        from vaetui.ui.screens.explore import CompareScreen, LockstepScreen

        self.app.push_screen(LockstepScreen(usable) if lockstep else CompareScreen(usable))

    def action_back(self) -> None:
        self.app.pop_screen()
