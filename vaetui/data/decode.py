"""Reading one image file safely: PIL only, any mode to RGB, brought to the configured geometry.

PIL raises ordinary exceptions on truncated or corrupt files; torchvision 0.29.1's
decode_png/decode_image can segfault on a truncated PNG, so it is never used on user files.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageFile

Image.MAX_IMAGE_PIXELS = 100_000_000  # larger is a decompression bomb, not a face
ImageFile.LOAD_TRUNCATED_IMAGES = False

CELEBA_CROP = 148  # the common CelebA-64 protocol: centre crop 148x148, then resize


class UnreadableImage(Exception):
    """A file that is not a readable image; the message says why."""


def load_rgb(path: str, size: tuple[int, int], geometry: str = "native") -> np.ndarray:
    """Decode path to uint8 (3, H, W) at size; raises UnreadableImage for anything bad."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                img = _to_rgb(im)
    except UnreadableImage:
        raise
    except Exception as exc:  # PIL raises many types: OSError, SyntaxError, ValueError, ...
        reason = (str(exc).replace(f"'{path}'", "").replace(str(path), "").strip() or type(exc).__name__)
        raise UnreadableImage(reason[:200]) from None
    if img.width < 2 or img.height < 2:
        raise UnreadableImage(f"too small ({img.width}x{img.height})")
    img = fit(img, size, geometry)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im.copy()
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def fit(img: Image.Image, size: tuple[int, int], geometry: str = "native") -> Image.Image:
    """native: centre-crop to the target's aspect, then resize; crop: centre 148x148 first (CelebA-64)."""
    h, w = size
    if geometry == "crop":
        side = min(CELEBA_CROP, img.width, img.height)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    src_w, src_h = img.size
    if (src_w, src_h) == (w, h):
        return img
    target = w / h
    if abs(src_w / src_h - target) > 1e-3:
        if src_w / src_h > target:
            new_w = max(1, round(src_h * target))
            left = (src_w - new_w) // 2
            img = img.crop((left, 0, left + new_w, src_h))
        else:
            new_h = max(1, round(src_w / target))
            top = (src_h - new_h) // 2
            img = img.crop((0, top, src_w, top + new_h))
    return img.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
