"""Inline images: our own half-block renderer by default, textual-image for sixel, kitty and unicode.

The default renderer is ours because importing textual-image's renderables probes the
terminal for sixel and kitty support (escape-sequence queries with timeouts), which over
SSH delays the first frame; half blocks need no probe. Everything else uses textual-image.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from vaetui.pictures.layout import fitted_size

if TYPE_CHECKING:  # PIL loads with the first picture, not before the first frame (the runs list has none)
    from PIL import Image as PILImage

RENDERERS = ("auto", "halfcell", "sixel", "kitty", "unicode", "none")


def _guarded(base):
    class Guarded(base, Renderable=base._Renderable):
        """textual-image divides by the area's size: draw nothing until there is one."""

        def render(self):
            if self.size.width <= 0 or self.size.height <= 0 or not self.image:
                return ""
            return super().render()

    Guarded.__name__ = f"Safe{base.__name__}"
    return Guarded


clock = time.monotonic  # the byte budget's clock (a test steps it)
COLOR_MODES = ("auto", "truecolor", "256")
BYTES_PER_S = 1200  # a new picture's changed cells trickle out at this rate: no burst over SSH
TICK_S = 0.25
CELL_BYTES = {"truecolor": 44, "256": 24}  # what one '▀' cell costs on the wire (two SGR colours, 3 UTF-8 bytes)
TOLERANCE = 6  # a cell whose colours moved by no more than this (of 255, any channel) is not resent


def color_mode(choice: str = "auto") -> str:
    """truecolor where the terminal says it has it ($COLORTERM), else the 256-colour palette."""
    if choice != "auto":
        return choice
    return "truecolor" if os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit") else "256"


def _xterm256(rgb):
    """Nearest xterm-256 palette index of each colour (the 6x6x6 cube or the 24 greys), vectorised."""
    import numpy as np

    levels = np.array([0, 95, 135, 175, 215, 255])
    idx = np.abs(rgb[..., None].astype(np.int16) - levels).argmin(-1)  # per channel, nearest cube level
    cube = 16 + 36 * idx[..., 0] + 6 * idx[..., 1] + idx[..., 2]
    cube_rgb = levels[idx]
    grey_level = np.clip(np.round((rgb.mean(-1) - 8) / 10), 0, 23).astype(np.int16)
    grey_rgb = (8 + 10 * grey_level)[..., None]
    d_cube = ((cube_rgb - rgb.astype(np.int16)) ** 2).sum(-1)
    d_grey = ((grey_rgb - rgb.astype(np.int16)) ** 2).sum(-1)
    return np.where(d_grey < d_cube, 232 + grey_level, cube).astype(np.int16)


class HalfBlockImage(Widget):
    """A picture drawn with '▀' cells: the top pixel in the foreground colour, the bottom one in the background.

    What goes over the wire is kept small: a new picture of the same size sends only the
    cells that changed by more than the eye tells (TOLERANCE), a few rows per tick within a
    byte budget (BYTES_PER_S, so a picture trickles in as a top-to-bottom wipe rather than a
    burst), with colours rounded to 6 bits a channel (or the 256-colour palette).
    """

    colors = "truecolor"  # set by the app (--colors)

    def __init__(self, image: PILImage.Image | None = None, **kwargs):
        super().__init__(**kwargs)
        self._image = image
        self._shown = None  # (rows, cols, 2) colour codes on screen (numpy, loaded with the first picture)
        self._target = None  # what the newest picture needs
        self._pending: list[int] = []  # rows still to send
        self._timer = None
        self._allowance = 0.0  # bytes the budget allows now (refilled at BYTES_PER_S, at most a tick's)
        self._refilled = 0.0
        self._cursor = 0  # the row after the last one sent
        self._styles: dict[tuple[int, int], Style] = {}
        self._key = None

    @property
    def image(self) -> PILImage.Image | None:
        return self._image

    @image.setter
    def image(self, value: PILImage.Image | None) -> None:
        self._image = value
        self._key = None
        self._update_cells()

    def on_resize(self) -> None:
        self._key = None
        self._shown = None  # a new size: everything is new
        self._update_cells()

    def _codes(self, width: int, height: int):
        """(rows, cols, 2) integer colour codes of the picture at this size (top, bottom pixel of each cell)."""
        import numpy as np

        from PIL import Image as PILImage

        img = self._image.convert("RGB").resize((width, height * 2), PILImage.Resampling.BOX)
        px = np.asarray(img, dtype=np.uint8).reshape(height, 2, width, 3).transpose(0, 2, 1, 3)
        if self.colors == "256":
            return _xterm256(px)
        q = (px.astype(np.int32) + 2) >> 2 << 2  # 6 bits a channel: the eye does not tell ±2
        q = np.minimum(q, 255)
        return (q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2]

    def _update_cells(self) -> None:
        width, height = self.size.width, self.size.height
        if self._image is None or width <= 0 or height <= 0:
            self._target = None
            return
        key = (width, height, id(self._image), self.colors)
        if key == self._key:
            return
        self._key = key
        self._target = self._codes(width, height)
        if self._shown is None or self._shown.shape != self._target.shape:
            self._shown = self._target.copy()
            self._pending = []
            self.refresh()
            return
        changed = [int(r) for r in self._changed(self._shown, self._target).any(axis=(1, 2)).nonzero()[0]]
        # the wipe goes on from where it was: pictures arriving faster than it never starve the lower rows
        self._pending = sorted(changed, key=lambda r: (r < self._cursor, r))
        if self._pending and self._timer is None:
            self._send()
            if self._pending:
                self._timer = self.set_interval(TICK_S, self._send)

    def _changed(self, shown, target):
        """Which cells' colours moved by more than TOLERANCE (palette codes: any change)."""
        import numpy as np

        if self.colors == "256":
            return shown != target
        delta = np.zeros(shown.shape, dtype=np.int32)
        for shift in (16, 8, 0):
            delta = np.maximum(delta, np.abs(((shown >> shift) & 255) - ((target >> shift) & 255)))
        return delta > TOLERANCE

    def _send(self) -> None:
        """Copy the next changed rows onto the screen, as far as the byte budget allows."""
        now = clock()
        cap = BYTES_PER_S * TICK_S  # no saving up: a second never carries more than the rate and one row
        self._allowance = min(cap, self._allowance + (now - self._refilled) * BYTES_PER_S)
        self._refilled = now
        per_cell = CELL_BYTES.get(self.colors, 44)
        while self._pending and self._allowance > 0:
            row = self._pending[0]
            diff = self._changed(self._shown[row], self._target[row]).any(axis=1).nonzero()[0]
            if not len(diff):
                self._pending.pop(0)
                continue
            x0, x1 = int(diff[0]), int(diff[-1]) + 1
            cost = (x1 - x0) * per_cell
            if cost > self._allowance and self._allowance < cap:
                break  # wait until the budget covers the row (a row is never split: it would tear)
            self._pending.pop(0)
            self._cursor = row + 1
            self._shown[row, x0:x1] = self._target[row, x0:x1]
            self.refresh(Region(x0, row, x1 - x0, 1))
            self._allowance -= cost
        if not self._pending and self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _style(self, top: int, bottom: int) -> Style:
        style = self._styles.get((top, bottom))
        if style is None:
            make = Color.from_ansi if self.colors == "256" else (lambda c: Color.from_rgb(c >> 16, (c >> 8) & 255, c & 255))
            style = Style(bgcolor=make(bottom)) if top == bottom else Style(color=make(top), bgcolor=make(bottom))
            if len(self._styles) > 65536:
                self._styles.clear()
            self._styles[(top, bottom)] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._shown is None or y >= self._shown.shape[0] or self._shown.shape[1] != width:
            return Strip.blank(max(width, 0))
        row = self._shown[y]
        segments = []
        for top, bottom in row.tolist():
            # one colour: a space with a background is fewer bytes than a half block
            segments.append(Segment(" " if top == bottom else "▀", self._style(top, bottom)))
        return Strip(Segment.simplify(segments), width)


def fit_picture(widget: Widget, image: PILImage.Image | None, box_cols: int, box_rows: int) -> None:
    """Show image in widget as large as fits in box_cols x box_rows cells (see fitted_size).

    The widget is resized only when its size changes, because a resize is a relayout (a
    full repaint, bytes over SSH).
    """
    if image is None or box_cols < 4 or box_rows < 2:
        return
    size = fitted_size(image.width, image.height, box_cols, box_rows)
    if getattr(widget, "_fitted_size", None) != size:
        widget._fitted_size = size
        widget.styles.width, widget.styles.height = size
    widget.image = image


_CLASSES: dict[str, type] = {}


def picture_class(renderer: str) -> type[Widget]:
    """The widget class for a renderer name (textual-image is imported on first use)."""
    if renderer == "none":
        return NoPicture
    if renderer == "halfcell":
        return HalfBlockImage
    if renderer not in _CLASSES:
        from textual_image import widget as tiw

        base = {
            "auto": tiw.Image, "sixel": tiw.SixelImage,
            "kitty": tiw.TGPImage, "unicode": tiw.UnicodeImage,
        }[renderer]
        if renderer == "sixel" or base is getattr(tiw, "SixelImage", None):
            _CLASSES[renderer] = base  # the sixel widget draws itself and sizes its own area
        else:
            _CLASSES[renderer] = _guarded(base)
    return _CLASSES[renderer]


class NoPicture(Static):
    """--image none: a line saying where the picture is, instead of the picture."""

    def __init__(self, image=None, **kwargs):
        super().__init__("", **kwargs)
        self.image = image

    @property
    def image(self):
        return self._img

    @image.setter
    def image(self, value) -> None:
        self._img = value
        if value is not None:
            self.update(f"[dim]image {value.width}x{value.height} (inline images are off: --image none)[/]")
        else:
            self.update("")
