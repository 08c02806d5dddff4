"""Procedural cartoon faces: the embedded default data, drawn vectorised in torch.

Image i of a split is a pure function of (seed, split, i): its factors come from a
counter-based hash (splitmix64), so it is the same on every machine and needs no state.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vaetui.errors import ConfigError

SPLIT_OFFSETS = {"train": 0, "valid": 1 << 40, "test": 2 << 40}
SPLIT_LENGTHS = {"train": 200_000, "valid": 10_000, "test": 10_000}

FACTORS = (
    "face_width", "skin_tone", "hair_colour", "hair_length", "eye_size", "eye_spacing",
    "smile", "head_x", "head_y", "background", "lighting", "mouth_open", "eyeglasses", "hat",
    "hat_colour", "shirt_colour",
)
ATTRIBUTES = (
    "Bald", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Gray_Hair",
    "Mouth_Slightly_Open", "Pale_Skin", "Smiling", "Wearing_Hat",
)
# Hair colour categories by the hair_colour factor: [0, .35) black, [.35, .7) brown,
# [.7, .9) blond, [.9, 1) gray.
_HAIR = torch.tensor([[0.10, 0.08, 0.07], [0.42, 0.25, 0.13], [0.93, 0.80, 0.45], [0.74, 0.74, 0.76]])
_HAIR_EDGES = (0.35, 0.70, 0.90)
_SKIN_LIGHT = torch.tensor([0.99, 0.87, 0.76])
_SKIN_DARK = torch.tensor([0.42, 0.28, 0.19])

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def uniforms(seed: int, indices: np.ndarray, n: int) -> np.ndarray:
    """(len(indices), n) uniforms in [0, 1), a pure function of (seed, index, column)."""
    idx = np.asarray(indices, dtype=np.uint64)[:, None]
    col = np.arange(n, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + idx) * np.uint64(0x9E3779B1) + col
    bits = _splitmix64(_splitmix64(key)) >> np.uint64(11)
    return bits.astype(np.float64) / float(1 << 53)


def face_factors(seed: int, split: str, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Ground-truth factors in [0, 1) for the given images of a split."""
    u = uniforms(seed, np.asarray(indices, dtype=np.int64) + SPLIT_OFFSETS[split], len(FACTORS))
    return {name: u[:, i] for i, name in enumerate(FACTORS)}


def face_attributes(factors: dict[str, np.ndarray]) -> np.ndarray:
    """CelebA-named binary attributes derived from the factors, (N, len(ATTRIBUTES)) bool."""
    bald = factors["hair_length"] < 0.08
    hair = np.digitize(factors["hair_colour"], _HAIR_EDGES)
    hat = factors["hat"] < 0.12
    values = {
        "Bald": bald & ~hat,
        "Black_Hair": ~bald & (hair == 0),
        "Blond_Hair": ~bald & (hair == 2),
        "Brown_Hair": ~bald & (hair == 1),
        "Eyeglasses": factors["eyeglasses"] < 0.2,
        "Gray_Hair": ~bald & (hair == 3),
        "Mouth_Slightly_Open": factors["mouth_open"] > 0.7,
        "Pale_Skin": factors["skin_tone"] < 0.2,
        "Smiling": factors["smile"] > 0.6,
        "Wearing_Hat": hat,
    }
    return np.stack([values[name] for name in ATTRIBUTES], axis=1)


def _palette(u: torch.Tensor, lo: float = 0.45, amp: float = 0.35) -> torch.Tensor:
    phase = torch.tensor([0.0, 1 / 3, 2 / 3])
    return lo + amp * torch.cos(2 * math.pi * (u[:, None] + phase[None, :]))


def _col(n: int, rgb: tuple[float, float, float]) -> torch.Tensor:
    return torch.tensor(rgb).expand(n, 3)


class _Canvas:
    """A batch of images with anti-aliased shape painting.

    Each shape is drawn only inside the batch-wide bounding box of where it can be
    (its rows and columns over all images), which is what makes rendering cheap.
    """

    def __init__(self, background: torch.Tensor, size: tuple[int, int]):
        H, W = size
        self.H, self.W = H, W
        self.px = 2.0 / H
        self.y = (torch.arange(H, dtype=torch.float32) + 0.5) * self.px - 1.0
        self.x = (torch.arange(W, dtype=torch.float32) + 0.5) * self.px - W / H
        n = background.shape[0]
        shade = 1.05 - 0.2 * (self.y + 1) / 2
        self.img = (background[:, :, None, None] * shade[None, None, :, None]).expand(n, 3, H, W).contiguous()

    def subset(self, keep: np.ndarray) -> "_Canvas":
        """A canvas over the images where keep is true; merge() writes it back."""
        sub = object.__new__(_Canvas)
        sub.__dict__.update(self.__dict__)
        sub.parent, sub.keep = self, torch.from_numpy(np.flatnonzero(keep))
        sub.img = self.img[sub.keep]
        return sub

    def merge(self) -> None:
        self.parent.img[self.keep] = self.img

    def _window(self, lo_x, hi_x, lo_y, hi_y):
        def span(lo, hi, origin, count):
            a = int(math.floor((float(lo.min()) - origin) / self.px)) - 1
            b = int(math.ceil((float(hi.max()) - origin) / self.px)) + 2
            return max(a, 0), min(b, count)
        c0, c1 = span(lo_x, hi_x, -self.W / self.H, self.W)
        r0, r1 = span(lo_y, hi_y, -1.0, self.H)
        return r0, r1, c0, c1

    def paint(self, color, alpha, window):
        """Blend color (N,3) into the window with alpha (N,h,w)."""
        r0, r1, c0, c1 = window
        if r1 <= r0 or c1 <= c0:
            return
        region = self.img[:, :, r0:r1, c0:c1]
        region.lerp_(color[:, :, None, None].expand_as(region), alpha[:, None])

    def coords(self, window):
        r0, r1, c0, c1 = window
        return self.x[None, None, c0:c1], self.y[None, r0:r1, None]

    def ellipse_mask(self, cx, cy, rx, ry, window=None):
        """Anti-aliased inside-mask of ellipses (params (N,1,1)) over a window."""
        if window is None:
            window = self._window(cx - rx, cx + rx, cy - ry, cy + ry)
        x, y = self.coords(window)
        # 1 - r^2 ~ 2(1 - r) near the edge: no sqrt needed for a one-pixel ramp.
        r2 = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
        k = 0.5 * torch.minimum(rx, ry) / self.px
        return torch.addcmul(k + 0.5, r2, k, value=-1.0).clamp_(0.0, 1.0), window

    def ellipse(self, color, cx, cy, rx, ry, gate=None):
        """Paint filled ellipses; gate (N,1,1) in {0,1} switches them per image."""
        mask, window = self.ellipse_mask(cx, cy, rx, ry)
        if gate is not None:
            mask = mask * gate
        self.paint(color, mask, window)

    def step(self, d):
        """Soft step: 1 where d > 0, anti-aliased over one pixel."""
        return (d / self.px + 0.5).clamp_(0.0, 1.0)

    def to_uint8(self) -> torch.Tensor:
        return self.img.mul_(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)


@torch.no_grad()
def render_faces(factors: dict[str, np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """Draw faces for the given factors: uint8 (N, 3, H, W)."""
    H, W = size
    f = {k: torch.from_numpy(v.astype(np.float32))[:, None, None] for k, v in factors.items()}
    flat = {k: v[:, 0, 0] for k, v in f.items()}
    n = len(flat["background"])
    cv = _Canvas(_palette(flat["background"], 0.55, 0.3), size)
    full = (0, H, 0, W)
    x, y = cv.coords(full)

    cx = (f["head_x"] - 0.5) * 0.3
    cy = 0.02 + (f["head_y"] - 0.5) * 0.16
    rx = 0.30 + 0.14 * f["face_width"]
    ry = torch.full_like(rx, 0.50)
    t = flat["skin_tone"][:, None]
    skin = _SKIN_LIGHT * (1 - t) + _SKIN_DARK * t
    hair_idx = torch.from_numpy(np.digitize(factors["hair_colour"], _HAIR_EDGES))
    hair = _HAIR[hair_idx]
    has_hair = torch.from_numpy(factors["hair_length"] >= 0.08).float()[:, None, None]
    hat = factors["hat"] < 0.12
    length = f["hair_length"]

    # Long hair behind the head, reaching lower the longer it is.
    long_ry = ry * (0.95 + 0.75 * length)
    cv.ellipse(hair, cx, cy + long_ry - ry * 0.95, rx * 1.28, long_ry, has_hair * (length > 0.45).float())
    # Shoulders and neck.
    cv.ellipse(_palette(flat["shirt_colour"], 0.4, 0.3), cx, torch.full_like(cx, 1.28), rx * 2.3, ry * 0.85)
    win = cv._window(cx - rx * 0.45, cx + rx * 0.45, cy + ry * 0.45, torch.ones_like(cy))
    wx, wy = cv.coords(win)
    cv.paint(skin * 0.85, cv.step(rx * 0.42 - (wx - cx).abs()) * cv.step(wy - cy - ry * 0.5), win)
    # Ears, then the face.
    for side in (-1, 1):
        cv.ellipse(skin * 0.92, cx + side * rx, cy + 0.03, rx * 0.2, ry * 0.2)
    cv.ellipse(skin, cx, cy, rx, ry)
    # Hair on top: a cap of a slightly larger ellipse above the fringe line.
    cap, win = cv.ellipse_mask(cx, cy - ry * 0.08, rx * 1.07, ry * 0.98)
    wx, wy = cv.coords(win)
    fringe = cy - ry * (0.42 - 0.12 * length) + 0.06 * ((wx - cx) / rx) ** 2
    cv.paint(hair, cap * cv.step(fringe - wy) * has_hair, win)
    # Eyes: whites, irises, brows.
    es = 0.045 + 0.04 * f["eye_size"]
    sp = 0.11 + 0.08 * f["eye_spacing"]
    ey = cy - 0.08
    dark = _col(n, (0.08, 0.08, 0.1))
    glasses = factors["eyeglasses"] < 0.2
    brow_col = hair * 0.7 + 0.05 * (1 - has_hair[:, 0])
    for side in (-1, 1):
        ex = cx + side * sp
        cv.ellipse(_col(n, (0.97, 0.97, 0.97)), ex, ey, es * 1.45, es)
        cv.ellipse(_col(n, (0.16, 0.11, 0.08)), ex, ey, es * 0.62, es * 0.62)
        by = ey - es * 1.9
        win = cv._window(ex - es * 1.5, ex + es * 1.5, by - 0.03, by + 0.03)
        wx, wy = cv.coords(win)
        cv.paint(brow_col, cv.step(es * 1.5 - (wx - ex).abs()) * cv.step(0.022 - (wy - by).abs()), win)
    if glasses.any():  # drawn on the wearers only
        g = cv.subset(glasses)
        gx, gy, gs, gsp = (v[g.keep] for v in (cx, ey, es, sp))
        for side in (-1, 1):
            outer, win = g.ellipse_mask(gx + side * gsp, gy, gs * 2.0 + 0.02, gs * 1.6 + 0.02)
            inner, _ = g.ellipse_mask(gx + side * gsp, gy, gs * 2.0, gs * 1.6, win)
            g.paint(dark[g.keep], (outer - inner).clamp_(min=0), win)
        win = g._window(gx - gsp, gx + gsp, gy - 0.02, gy + 0.02)
        wx, wy = g.coords(win)
        g.paint(dark[g.keep], g.step(gsp - gs * 2.0 - (wx - gx).abs()) * g.step(0.012 - (wy - gy).abs()), win)
        g.merge()
    # Nose.
    cv.ellipse(skin * 0.8, cx, cy + 0.1, torch.full_like(rx, 0.035), torch.full_like(rx, 0.06))
    # Mouth: a parabola whose corners rise with the smile; opened, a dark inside.
    smile = (f["smile"] - 0.35) * 2.0
    mx, my, mw = cx, cy + 0.27, 0.1 + 0.04 * f["smile"]
    win = cv._window(mx - mw, mx + mw, my - 0.12, my + 0.12)
    wx, wy = cv.coords(win)
    tx = (wx - mx) / mw
    inside_w = cv.step((1.0 - tx.abs()) * mw)
    curve = my - 0.07 * smile * tx**2
    opened = torch.from_numpy(factors["mouth_open"] > 0.7).float()[:, None, None]
    gap = 0.055 * opened * (1 - tx**2).clamp(min=0)
    cv.paint(_col(n, (0.35, 0.05, 0.07)), inside_w * cv.step(wy - curve) * cv.step(curve + gap - wy), win)
    lips = (cv.step(0.016 - (wy - curve).abs()) + opened * cv.step(0.016 - (wy - curve - gap).abs())).clamp_(max=1)
    cv.paint(_col(n, (0.72, 0.22, 0.24)), inside_w * lips, win)
    # Hat: crown and brim.
    if hat.any():  # drawn on the wearers only
        h = cv.subset(hat)
        hx, hy, hrx, hry = (v[h.keep] for v in (cx, cy - ry * 0.5, rx, ry))
        _, win = h.ellipse_mask(hx, hy, hrx * 1.45, hry * 0.6)
        wx, wy = h.coords(win)
        crown, _ = h.ellipse_mask(hx, hy, hrx * 0.98, hry * 0.6, win)
        brim, _ = h.ellipse_mask(hx, hy, hrx * 1.45, torch.full_like(hrx, 0.05), win)
        colour = _palette(flat["hat_colour"][h.keep], 0.35, 0.3)
        h.paint(colour, torch.maximum(crown * h.step(hy - wy), brim), win)
        h.merge()
    # Lighting: a soft directional shade across the picture.
    light = (f["lighting"] - 0.5) * 0.5
    cv.img.mul_((1.0 + light * x / (W / H))[:, None])
    return cv.to_uint8()


class SyntheticFaces:
    """One split of the synthetic faces: deterministic images, factors and attributes by index."""

    attribute_names = ATTRIBUTES
    factor_names = FACTORS

    def __init__(self, size: tuple[int, int] = (64, 64), seed: int = 0, split: str = "train",
                 length: int | None = None):
        if split not in SPLIT_OFFSETS:
            raise ConfigError("split", f"must be one of {', '.join(SPLIT_OFFSETS)}")
        self.size = tuple(size)
        self.seed = seed
        self.split = split
        self.length = SPLIT_LENGTHS[split] if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def factors(self, indices) -> dict[str, np.ndarray]:
        """Ground-truth factors in [0, 1) for these images."""
        return face_factors(self.seed, self.split, np.asarray(indices))

    def attributes(self, indices) -> torch.Tensor:
        """Binary attributes (N, 10) bool for these images."""
        return torch.from_numpy(face_attributes(self.factors(indices)))

    def images(self, indices) -> torch.Tensor:
        """uint8 images (N, 3, H, W) for these indices."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.length):
            raise IndexError(f"index out of range for {self.split} split of {self.length} images")
        return render_faces(self.factors(indices), self.size)
