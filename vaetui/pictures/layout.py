"""How large a picture can be drawn in a terminal area: pure arithmetic, for the screens and the figures alike.

Half blocks: a cell is 1 pixel wide and 2 tall. A picture smaller than its area is
enlarged by a whole factor (each pixel the same number of cells: crisp), a larger one
shrunk to fit, always keeping its aspect.
"""

from __future__ import annotations


def fitted_scale(width: int, height: int, box_cols: int, box_rows: int) -> float:
    """The factor a width x height picture is drawn at in a box of cells."""
    if width <= 0 or height <= 0 or box_cols <= 0 or box_rows <= 0:
        return 0.0
    scale = min(box_cols / width, 2 * box_rows / height)
    return float(int(scale)) if scale >= 1 else scale


def fitted_size(width: int, height: int, box_cols: int, box_rows: int) -> tuple[int, int]:
    """(cols, rows) of cells a width x height picture takes in the box."""
    scale = fitted_scale(width, height, box_cols, box_rows)
    if scale >= 1:
        return max(1, int(width * scale)), max(1, (int(height * scale) + 1) // 2)
    cols, rows = box_cols, round(box_cols * height / width / 2)
    if rows > box_rows:
        rows, cols = box_rows, round(box_rows * 2 * width / height)
    return max(cols, 1), max(rows, 1)


def columns_that_fit(tile: float, rows: int, pad: int, box_cols: int, box_rows: int, most: int) -> int:
    """How many tile columns of a picture `rows` tiles tall fill a box best (its height sets the scale)."""
    scale = min(1.0, 2 * box_rows / (rows * tile + pad))
    return max(1, min(most, int((box_cols / scale - pad) // tile)))


def best_columns(n: int, tile: tuple[int, int], box_cols: int, box_rows: int, lo: int = 1, hi: int = 16) -> int:
    """The grid width (images per row) that draws n (h, w) tiles (2-pixel gutters) largest in a box of cells."""
    th, tw = tile
    best, best_size = lo, -1.0
    for c in range(lo, min(hi, n) + 1):
        rows = -(-n // c)
        size = fitted_scale(c * (tw + 2) + 2, rows * (th + 2) + 2, box_cols, box_rows)
        if size > best_size + 1e-9:
            best, best_size = c, size
    return best


def bands_that_fit(kinds: int, cols: int, tile: tuple[int, int], box_cols: int, box_rows: int, most: int = 4) -> int:
    """How many bands of `cols` images (each `kinds` rows tall) draw their tiles largest; more bands on a tie."""
    th, tw = tile
    width = cols * (tw + 2) + 2
    best, best_scale = 1, 0.0
    for b in range(1, most + 1):
        scale = fitted_scale(width, b * kinds * (th + 2) + 2, box_cols, box_rows)
        if scale >= best_scale - 1e-9:
            best, best_scale = b, scale
    return best
