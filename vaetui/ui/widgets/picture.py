"""Inline images: our own half-block renderer by default, textual-image for sixel, kitty and unicode.

The default renderer is ours because importing textual-image's renderables probes the
terminal for sixel and kitty support (escape-sequence queries with timeouts), which over
SSH delays the first frame; half blocks need no probe. Everything else uses textual-image.
"""

from __future__ import annotations

from PIL import Image as PILImage
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

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


class HalfBlockImage(Widget):
    """A picture drawn with '▀' cells: the top pixel in the foreground colour, the bottom one in the background."""

    def __init__(self, image: PILImage.Image | None = None, **kwargs):
        super().__init__(**kwargs)
        self._image = image
        self._strips: list[Strip] = []
        self._key = None

    @property
    def image(self) -> PILImage.Image | None:
        return self._image

    @image.setter
    def image(self, value: PILImage.Image | None) -> None:
        self._image = value
        self._key = None
        self.refresh()

    def _build(self, width: int, height: int) -> None:
        if self._key == (width, height, id(self._image)):
            return
        self._key = (width, height, id(self._image))
        img = self._image.convert("RGB").resize((width, height * 2), PILImage.Resampling.BOX)
        px = img.load()
        strips = []
        for row in range(height):
            segments = []
            for col in range(width):
                top, bottom = px[col, 2 * row], px[col, 2 * row + 1]
                if top == bottom:  # one colour: a space with a background is fewer bytes
                    segments.append(Segment(" ", Style(bgcolor=Color.from_rgb(*bottom))))
                else:
                    segments.append(Segment("▀", Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom))))
            strips.append(Strip(Segment.simplify(segments), width))
        self._strips = strips

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        if self._image is None or width <= 0 or height <= 0:
            return Strip.blank(max(width, 0))
        self._build(width, height)
        return self._strips[y] if y < len(self._strips) else Strip.blank(width)


def fit_picture(widget: Widget, image: PILImage.Image | None, box_cols: int, box_rows: int) -> None:
    """Show image in widget as large as fits in box_cols x box_rows cells at its own aspect ratio.

    Half blocks: one cell is 1x2 pixels. The widget is resized only when its size changes,
    because a resize is a relayout (a full repaint, bytes over SSH).
    """
    if image is None or box_cols < 4 or box_rows < 2:
        return
    aspect = image.width / image.height
    cols, rows = box_cols, round(box_cols / aspect / 2)
    if rows > box_rows:
        rows, cols = box_rows, round(box_rows * 2 * aspect)
    size = (max(cols, 1), max(rows, 1))
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
        if isinstance(value, PILImage.Image):
            self.update(f"[dim]image {value.width}x{value.height} (inline images are off: --image none)[/]")
        else:
            self.update("")
