"""The study screen: a live table of a study's trials, the best so far, its value by trial, the rate–distortion
scatter and parameter importances; from a row, its monitor, its reconstructions, or a comparison of marked rows.

It reads what `vaetui sweep show` prints (vaetui.study_view.study_table), in a worker thread
every few seconds, so a study that other processes or hosts run fills in as they go.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from vaetui.errors import VaeError
from vaetui.ui.widgets.chart import render_chart
from vaetui.ui.widgets.keybar import KeyBar
from vaetui.ui.widgets.text import Quiet

REFRESH_EVERY_S = 5.0
STATE_COLOURS = {"complete": "dodger_blue2", "pruned": "dark_orange", "running": "green3", "fail": "red"}


def studies(root: Path) -> list[str]:
    """Study names in a run store, the most recently changed first."""
    found = [p for p in Path(root).iterdir() if (p / "study.json").exists()] if Path(root).is_dir() else []
    return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def study_of(run: str, root: Path) -> str | None:
    """The study a trial run belongs to (<study>-tNNN), if that study is here."""
    head, sep, tail = run.rpartition("-t")
    if sep and tail.isdigit() and (Path(root) / head / "study.json").exists():
        return head
    return None


class StudyScreen(Screen[None]):
    """One study, live: enter monitors the trial, e shows its reconstructions, space marks, v compares."""

    BINDINGS = [
        Binding("enter", "open", "monitor", priority=True),
        Binding("e", "explore", "reconstructions"),
        Binding("space", "mark", "mark"),
        Binding("v", "compare", "compare marked"),
        Binding("G", "groups", "by seed"),
        Binding("s", "stop", "stop study"),
    ]

    def __init__(self, study: str):
        super().__init__()
        self.study = study
        self.table: dict | None = None
        self.marked: set[str] = set()
        self._columns: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Quiet("", id="study-title")
        yield DataTable(id="trials", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="study-charts"):
            yield Static("", id="study-values", classes="study-chart")
            yield Static("", id="study-rd", classes="study-chart")
        yield Quiet("", id="study-best")
        yield KeyBar()

    def on_mount(self) -> None:
        self.title, self.sub_title = "vaetui", f"study · {self.study}"
        self.query_one("#study-title", Quiet).set(f"[b]study {self.study}[/]  [dim]reading…[/]")
        self.load()
        self.set_interval(REFRESH_EVERY_S, self.load)

    @work(thread=True, exclusive=True, group="study", exit_on_error=False)
    def load(self) -> None:
        from vaetui.studies.results import study_table

        try:
            table = study_table(self.app.store.root, self.study)
        except VaeError as exc:
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, table)

    def show(self, table: dict) -> None:
        from vaetui.studies.results import format_table

        if table == self.table:
            return  # nothing new: nothing repainted
        self.table = table
        params = sorted({k for r in table["rows"] for k in r["params"]})
        columns = ("", "trial", "state", *params, "epoch", table["metric"], "KL", "recon")
        grid = self.query_one("#trials", DataTable)
        cursor = grid.cursor_row
        if columns != self._columns:
            grid.clear(columns=True)
            grid.add_columns(*columns)
            self._columns = columns
        else:
            grid.clear()
        for r in table["rows"]:
            grid.add_row("•" if r["run"] in self.marked else "", str(r["number"]),
                         f"[{STATE_COLOURS.get(r['state'], 'white')}]{r['state']}[/]",
                         *[_cell(r["params"].get(p)) for p in params], str(r["epoch"] or "-"),
                         *[_cell(v) for v in (r["value"], r["kl"], r["recon"])])
        if cursor is not None and table["rows"]:
            grid.move_cursor(row=min(cursor, len(table["rows"]) - 1))
        done = sum(r["state"] == "complete" for r in table["rows"])
        self.query_one("#study-title", Quiet).set(
            f"[b]study {self.study}[/]  {len(table['rows'])}/{table['trials']} trials, {done} complete  "
            f"[dim]sampler {table['sampler']} · pruner {table['pruner']} · {table['metric']} ({table['direction']})[/]")
        lines = format_table(table).splitlines()
        tail = [ln for ln in lines if ln.startswith(("best:", "importance:"))]
        self.query_one("#study-best", Quiet).set("  ·  ".join(tail))
        self._charts()

    def on_resize(self) -> None:
        if self.table is not None:
            self._charts()

    def _charts(self) -> None:
        rows = self.table["rows"]
        values = self.query_one("#study-values", Static)
        w, h = values.size.width, values.size.height
        scored = [r for r in rows if r["value"] is not None]
        values.update(render_chart([(self.table["metric"], [r["number"] for r in scored],
                                     [r["value"] for r in scored], "dodger_blue2")], w, h, x_label="trial",
                                   lines=False))
        rd = self.query_one("#study-rd", Static)
        series = []
        for state, colour in STATE_COLOURS.items():
            pts = [r for r in rows if r["state"] == state and r["kl"] is not None and r["recon"] is not None]
            if pts:
                series.append((state, [r["kl"] for r in pts], [r["recon"] for r in pts], colour))
        rd.update(render_chart(series, rd.size.width, rd.size.height, x_label="rate: KL (y: reconstruction)",
                               lines=False))

    def selected_run(self) -> str | None:
        grid = self.query_one("#trials", DataTable)
        rows = (self.table or {}).get("rows", [])
        if grid.cursor_row is None or grid.cursor_row >= len(rows):
            return None
        return rows[grid.cursor_row]["run"] or None

    def action_open(self) -> None:
        run = self.selected_run()
        if run and (self.app.store.root / run / "config.json").exists():
            self.app.open_run(run)

    def action_explore(self) -> None:
        run = self.selected_run()
        if not run or not self.app.store.open(run).has_checkpoint():
            self.notify("that trial has no checkpoint yet", severity="warning")
            return
        from vaetui.ui.screens.explore import ReconstructScreen

        self.app.push_screen(ReconstructScreen(run))

    def action_stop(self) -> None:
        """Stop every trial running on this host (each saves a checkpoint); `vaetui sweep … --resume` continues."""
        from vaetui.ui.screens.dialogs import Confirm

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            from vaetui.studies.spec import load_study, read_spec
            from vaetui.studies.worker import stop_workers

            spec = read_spec(self.app.store.root, self.study)
            here, elsewhere = stop_workers(load_study(self.app.store.root, spec))
            note = f"asked {here} worker(s) to stop; each checkpoints its trial"
            if elsewhere:
                note += f" ({elsewhere} on other hosts: stop them there)"
            self.notify(note if here or elsewhere else "no trial of this study is running")

        self.app.push_screen(Confirm(f"Stop study {self.study}? Each running trial saves a checkpoint; "
                                     "vaetui sweep … --resume continues it."), answer)

    def action_mark(self) -> None:
        run = self.selected_run()
        if run:
            self.marked ^= {run}
            table, self.table = self.table, None
            self.show(table)

    def action_groups(self) -> None:
        """The trials grouped by seed (a sweep with seed = [0, 1, 2]): mean ± std of each group."""
        names = [r["run"] for r in (self.table or {}).get("rows", [])
                 if r["run"] and (self.app.store.root / r["run"] / "config.json").exists()]
        if not names:
            self.notify("no trial has a run yet", severity="warning")
            return
        from vaetui.ui.screens.groups import GroupsScreen

        self.app.push_screen(GroupsScreen(names, f"study {self.study}"))

    def action_compare(self) -> None:
        usable = [n for n in sorted(self.marked) if self.app.store.open(n).has_checkpoint()]
        if len(usable) < 2:
            self.notify("mark two or more trials with checkpoints (space), then v", severity="warning")
            return
        from vaetui.ui.screens.explore import CompareScreen

        self.app.push_screen(CompareScreen(usable))


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
