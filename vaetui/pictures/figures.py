"""What each explore screen and its headless twin draw: the same PIL pictures for the same arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from vaetui.models import latent
from vaetui.data import open_split
from vaetui.errors import VaeError
from vaetui.pictures.imaging import frame, grid, stack_rows
from vaetui.models.pixels import to_uint8


@dataclass
class Figure:
    """A picture plus the numbers shown beside it."""

    image: Image.Image
    info: dict = field(default_factory=dict)
    frames: list[Image.Image] = field(default_factory=list)


def _split(config, split: str):
    return open_split(config.data, split)


def reconstructions(model, config, split: str = "test", n: int = 8, start: int = 0, compare=None,
                    cols: int | None = None) -> Figure:
    """Originals over reconstructions for images start..start+n of a split, with each image's loss.

    compare=(model, config) of a second run (or a list of them) adds its reconstructions of
    the same images as further rows (the seed's latent 3 vs latent 100); sizes must match.
    cols: images per band (default all n in one band); each band is originals over reconstructions.
    """
    data = _split(config, split)
    if not 0 <= start < len(data):
        raise VaeError(f"--start {start} is out of range: the {split} split has {len(data)} images")
    idx = np.arange(start, min(start + n, len(data)))
    x = data.images(idx)
    recon, losses = latent.reconstruct(model, x, config.model.likelihood)
    rows, info = [x, recon], {"indices": idx.tolist(), "losses": losses.tolist(), "split": split,
                              "split_size": len(data)}
    others = [] if compare is None else (list(compare) if isinstance(compare, list) else [compare])
    for other, other_cfg in others:
        if other_cfg.data.size != config.data.size:
            raise VaeError(f"cannot compare: image sizes differ ({other_cfg.data.size} vs {config.data.size})")
        recon2, losses2 = latent.reconstruct(other, x, other_cfg.model.likelihood)
        rows.append(recon2)
        info.setdefault("compare_losses_all", []).append(losses2.tolist())
    if others:
        info["compare_losses"] = info["compare_losses_all"][0]
    cols = max(1, min(cols or len(idx), len(idx)))
    rows_u8 = [to_uint8(r) for r in rows]  # originals are uint8, reconstructions float: one dtype to stack
    bands = [torch.cat([r[k : k + cols] for r in rows_u8]) for k in range(0, len(idx), cols)]
    if len(bands) == 1:
        return Figure(stack_rows(rows), info)
    info["cols"] = cols
    return Figure(grid(torch.cat([_padded(b, len(rows), cols) for b in bands]), ncol=cols), info)


def _padded(band: torch.Tensor, kinds: int, cols: int) -> torch.Tensor:
    """A last band with fewer images, padded with the grid's background so each kind stays in its row."""
    per = band.shape[0] // kinds
    if per == cols:
        return band
    filler = torch.full((cols - per, *band.shape[1:]), 24, dtype=torch.uint8)
    parts = [torch.cat([band[k * per : (k + 1) * per], filler]) for k in range(kinds)]
    return torch.cat(parts)


def data_grid(data_config, seed: int = 0, n: int = 32, cols: int = 8, split: str = "train") -> Figure:
    """The seed's show(): n random images of a split (sorted indices), in a grid."""
    data = open_split(data_config, split)
    n = min(n, len(data))
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    names = list(getattr(data, "attribute_names", []))
    attrs = data.attributes(idx).numpy() if names else np.zeros((n, 0), bool)
    return Figure(grid(data.images(idx), ncol=cols), {"indices": idx.tolist(), "cols": cols, "attribute_names": names,
                                                      "attributes": attrs.tolist(), "skipped": getattr(data, "skipped", [])})


def data_blend(data_config, i: int, j: int, alphas) -> Figure:
    """The seed's image-space blend α·X1 + (1−α)·X2 of training images i and j, one frame per α."""
    data = open_split(data_config, "train")
    for k in (i, j):
        if not 0 <= k < len(data):
            raise VaeError(f"image {k} is out of range: the training split has {len(data)} images")
    x = data.images([i, j])
    strip = latent.blend(x[0], x[1], alphas)
    return Figure(grid(strip, ncol=len(alphas)), {"alphas": list(alphas), "indices": [i, j]})


def samples(model, n: int = 32, seed: int = 0, temperature: float = 1.0, cols: int = 8, mixture=None,
            sampler: str = "prior") -> Figure:
    """A grid of faces decoded from the model's prior at temperature T (the seed's 32 from N(0, T² I)), or from a
    sampler's mixture (vaetui.models.samplers; `sampler` names it)."""
    if mixture is None:
        images = latent.sample(model, n, seed, temperature)
    else:
        with torch.no_grad():
            z = mixture.sample(n, torch.Generator().manual_seed(seed), temperature)
            images = model.decode(z.to(next(model.parameters()).device)).cpu()
    return Figure(grid(images, ncol=cols), {"seed": seed, "temperature": temperature,
                                            "sampler": "prior" if mixture is None else sampler})


def interpolation(model, config, steps: int = 11, mode: str = "lerp", seed: int = 0, pairs: int = 1,
                  endpoints: tuple[int, int] | None = None, extrapolate: float = 0.0, split: str = "test") -> Figure:
    """Rows of frames along latent paths (one row a pair); frames of the first row for GIFs and the screen."""
    ts = latent.path_ts(steps, extrapolate)
    if endpoints is not None:
        data = _split(config, split)
        for k in endpoints:
            if not 0 <= k < len(data):
                raise VaeError(f"image {k} is out of range: the {split} split has {len(data)} images")
        pairs_z = [latent.image_endpoints(model, data, *endpoints)]
    else:
        pairs_z = latent.random_endpoints(model, seed, pairs)
    rows, norms = [], []
    for z1, z2 in pairs_z:
        images, ns = latent.interpolate(model, z1, z2, ts, mode)
        rows.append(images)
        norms.append(ns)
    return Figure(stack_rows(rows), {"t": ts, "norms": norms, "mode": mode},
                  frames=[frame(img) for img in rows[0]])


def zoom(image: Image.Image, index: int, cols: int, tile_w: int, tile_h: int, padding: int = 2) -> Image.Image:
    """Tile number `index` of a grid picture (row-major, `cols` a row), cut out."""
    r, c = divmod(index, cols)
    x, y = padding + c * (tile_w + padding), padding + r * (tile_h + padding)
    return image.crop((x, y, x + tile_w, y + tile_h))


def zoom_column(image: Image.Image, index: int, cols: int, kinds: int, tile_w: int, tile_h: int,
                padding: int = 2) -> Image.Image:
    """Image `index` of a banded grid (each band `kinds` rows: original, reconstruction, …), its tiles side by side."""
    band, c = divmod(index, cols)
    tiles = [zoom(image, (band * kinds + k) * cols + c, cols, tile_w, tile_h, padding) for k in range(kinds)]
    out = Image.new("RGB", (kinds * tile_w + (kinds - 1) * padding, tile_h), (24, 24, 24))
    for k, t in enumerate(tiles):
        out.paste(t, (k * (tile_w + padding), 0))
    return out


# ---------------------------------------------------------------------------- what the screens add around a figure
def interpolation_view(fig: Figure, frame_index: int, box: tuple[int, int] | None = None) -> Image.Image:
    """The interpolate screen's picture: one frame large above the whole strip.

    In a box of (cols, rows) cells the large frame gets the largest whole factor that does not
    shrink the strip below the size it has beside a frame of factor 1; without a box it is three
    strips tall.
    """
    from vaetui.pictures.layout import fitted_scale

    frames, strip = fig.frames, fig.image
    big = frames[max(0, min(frame_index, len(frames) - 1))]
    scale = max(1, strip.height * 3 // big.height)
    if box is not None and box[0] > 0 and box[1] > 0:
        def fit(s: int) -> float:  # the whole picture's factor on screen with a large frame of factor s
            return fitted_scale(max(strip.width, big.width * s), big.height * s + 4 + strip.height, *box)

        scale = max(s for s in range(1, 33) if fit(s) >= fit(1) - 1e-9)
    big = big.resize((big.width * scale, big.height * scale), Image.Resampling.NEAREST)
    out = Image.new("RGB", (max(strip.width, big.width), big.height + 4 + strip.height), (24, 24, 24))
    out.paste(big, ((out.width - big.width) // 2, 0))
    out.paste(strip, (0, big.height + 4))
    return out


SELECTED, PICKED = (255, 200, 0), (80, 160, 255)


def framed(image: Image.Image, n: int, cols: int, tile: tuple[int, int], marks: list[tuple[int, tuple]]) -> Image.Image:
    """A grid picture with some tiles framed in a colour: [(index, (r, g, b)), ...]."""
    from PIL import ImageDraw

    img = image.copy()
    th, tw = tile
    draw = ImageDraw.Draw(img)
    for k, colour in marks:
        if 0 <= k < n:
            r, c = divmod(k, cols)
            x0, y0 = c * (tw + 2), r * (th + 2)
            draw.rectangle([x0, y0, x0 + tw + 3, y0 + th + 3], outline=colour, width=2)
    return img


def data_view(grid_fig: Figure, blend_fig: Figure | None, selected: int, picked: list[int], cols: int,
              tile: tuple[int, int] = (64, 64)) -> Image.Image:
    """The data screen's picture: the grid with the selected (yellow) and picked (blue) images framed, the blend below."""
    n = len(grid_fig.info["indices"])
    img = framed(grid_fig.image, n, cols, tile, [(p, PICKED) for p in picked] + [(selected, SELECTED)])
    if blend_fig is None:
        return img
    strip = blend_fig.image
    strip = strip.resize((img.width, max(1, round(strip.height * img.width / strip.width))), Image.Resampling.BILINEAR)
    out = Image.new("RGB", (img.width, img.height + 4 + strip.height), (24, 24, 24))
    out.paste(img, (0, 0))
    out.paste(strip, (0, img.height + 4))
    return out


def stack_pictures(parts: list[Image.Image], gap: int = 4) -> Image.Image:
    """Pictures one above the other, centred."""
    width = max(p.width for p in parts)
    out = Image.new("RGB", (width, sum(p.height for p in parts) + gap * (len(parts) - 1)), (24, 24, 24))
    y = 0
    for p in parts:
        out.paste(p, ((width - p.width) // 2, y))
        y += p.height + gap
    return out
