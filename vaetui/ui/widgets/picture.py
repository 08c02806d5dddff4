"""Inline images: textual-image renderers chosen by --image, guarded against zero-size areas."""

from __future__ import annotations

from PIL import Image as PILImage
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


_CLASSES: dict[str, type] = {}


def picture_class(renderer: str) -> type[Widget]:
    """The widget class for a renderer name (textual-image is imported on first use)."""
    if renderer == "none":
        return NoPicture
    if renderer not in _CLASSES:
        from textual_image import widget as tiw

        base = {
            "auto": tiw.Image, "halfcell": tiw.HalfcellImage, "sixel": tiw.SixelImage,
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
