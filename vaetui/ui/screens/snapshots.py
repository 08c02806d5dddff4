"""The monitor's picture pane: the run's newest snapshot (originals, reconstructions, samples) fitted to its box,
at most every PICTURE_EVERY_S while following, scrubbing back through the snapshots (←/→, home/end; loaded in a
worker) and the picture alone over the whole body (enter). A mixin of MonitorScreen, whose widgets (#picture,
#snaplabel, #right) and RunView it draws."""

from __future__ import annotations

import time

from textual import work
from textual.worker import get_current_worker

from vaetui.pictures.layout import columns_that_fit
from vaetui.ui.feeds import load_picture
from vaetui.ui.widgets.picture import fit_picture
from vaetui.ui.widgets.text import Quiet

PICTURE_EVERY_S = 12.0  # a new picture is the most expensive redraw: at most this often while following
PREVIEW_COLUMNS = 8  # the engine's preview batch: images per row of a snapshot


class SnapshotPane:
    """Pictures and scrubbing for MonitorScreen (which sets heat_shown, snapshot_index, _shown_picture, _picture_at
    and view)."""

    def _update_picture(self) -> None:
        if self.heat_shown:
            return  # the heat map has the place (k brings the pictures back, as they are then)
        snaps = self.view.history.snapshots
        label = self.query_one("#snaplabel", Quiet)
        if self.snapshot_index is not None:
            return  # a scrubbed snapshot stays until the person moves on
        following = bool(self.view.alive) and self._shown_picture is not None
        if following and time.monotonic() - self._picture_at < PICTURE_EVERY_S:
            return
        where = f"step {snaps[-1][0]} (latest)" if snaps else "no images yet"
        label.set(f"{where} [dim]· originals, reconstructions, samples · ←/→[/]")
        picture = self.view.picture
        if picture is not None and picture is not self._shown_picture:
            self._show_picture(picture)

    def _show_picture(self, picture) -> None:
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
        tile = (picture.width - 2) / PREVIEW_COLUMNS
        # The height sets the scale: show as many of the 8 columns of faces as then fit the width.
        keep = columns_that_fit(tile, 3, 2, cols_avail, rows_avail, PREVIEW_COLUMNS)
        picture = picture.crop((0, 0, round(2 + keep * tile), picture.height))
        fit_picture(self.query_one("#picture"), picture, cols_avail, rows_avail)

    # ------------------------------------------------------------------ scrubbing (pictures load in a worker)
    def action_scrub(self, delta: int) -> None:
        n = len(self.view.history.snapshots)
        if n:
            current = n - 1 if self.snapshot_index is None else self.snapshot_index
            self._scrub(max(0, min(n - 1, current + delta)))

    def action_scrub_to(self, where: int) -> None:
        n = len(self.view.history.snapshots)
        if n:
            self._scrub(n - 1 if where == -1 else 0)

    def _scrub(self, index: int) -> None:
        snaps = self.view.history.snapshots
        latest = index == len(snaps) - 1
        self.snapshot_index = None if latest else index
        step = snaps[index][0]
        where = f"step {step} (latest)" if latest else f"step {step} ({index + 1}/{len(snaps)})"
        self.query_one("#snaplabel", Quiet).set(f"{where} [dim]· originals, reconstructions, samples · ←/→[/]")
        self._load_snapshot(snaps[index][1])

    @work(thread=True, exclusive=True, group="snapshot", exit_on_error=False)
    def _load_snapshot(self, relpath: str) -> None:
        picture = load_picture(self.app.store.open(self.view.run), relpath)
        if picture is not None and not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_picture, picture)

    def action_zoom(self) -> None:
        """The picture alone over the whole body (enter again: back to the numbers)."""
        self.toggle_class("-zoom")
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self._shown_picture is not None:
            self._fit_picture()
