"""Small fake datasets on disk in real formats, for tests and benchmarks (nothing is downloaded).

`make_fake_celeba` writes synthetic faces as 218x178 JPEGs with the six CelebA text files
in their published formats (count line, header line, space-padded values).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from vaetui.data.synthetic import ATTRIBUTES as SYNTH_ATTRIBUTES, SyntheticFaces

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
LANDMARKS = ("lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
             "rightmouth_x rightmouth_y")


def truncated_png() -> bytes:
    """83 bytes: a valid signature and IHDR, then an IDAT chunk whose data is shorter than it claims."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
    noise = np.random.default_rng(0).integers(0, 256, size=64 * (1 + 64 * 3), dtype=np.uint8)
    pixels = zlib.compress(noise.tobytes())  # incompressible: the stream really is cut short
    idat = struct.pack(">I", len(pixels)) + b"IDAT" + pixels[:42]
    data = b"\x89PNG\r\n\x1a\n" + ihdr + idat
    return data[:83]


def corrupt_files() -> dict[str, bytes]:
    """Bad files of every kind a user can have, by suffix: truncated JPEG and PNG, empty, not an image."""
    import io

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 80)).save(buf, format="JPEG")
    return {
        "truncated.jpg": buf.getvalue()[: len(buf.getvalue()) // 3],
        "empty.jpg": b"",
        "notes.jpg": b"this is a text file with an image extension\n",
        "truncated.png": truncated_png(),
    }


def make_fake_celeba(root: str | Path, n: int = 300, corrupt: int = 0, seed: int = 0, quality: int = 90) -> Path:
    """Write ROOT/celeba/ in torchvision's layout; `corrupt` images spread over the splits are damaged files."""
    folder = Path(root) / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    faces = SyntheticFaces((218, 178), seed=seed)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    bad = list(corrupt_files().values())
    damaged = [int(i) for i in np.linspace(n - 1, 0, corrupt, endpoint=False)] if corrupt else []
    for start in range(0, n, 64):
        idx = np.arange(start, min(start + 64, n))
        batch = faces.images(idx).permute(0, 2, 3, 1).numpy()
        for k, i in enumerate(idx):
            if i in damaged:
                (images / names[i]).write_bytes(bad[damaged.index(i) % len(bad)])
            else:
                Image.fromarray(batch[k]).save(images / names[i], format="JPEG", quality=quality)
    rng = np.random.default_rng(seed)
    # 80/10/10 like the real partition (162,770 / 19,867 / 19,962).
    parts = np.where(np.arange(n) < int(n * 0.8), 0, np.where(np.arange(n) < int(n * 0.9), 1, 2))
    (folder / "list_eval_partition.txt").write_text("".join(f"{f} {p}\n" for f, p in zip(names, parts)))
    synth = faces.attributes(np.arange(n)).numpy()
    values = rng.choice([-1, 1], size=(n, len(CELEBA_ATTRIBUTES)))
    for j, name in enumerate(SYNTH_ATTRIBUTES):
        values[:, CELEBA_ATTRIBUTES.index(name)] = np.where(synth[:, j], 1, -1)
    rows = "".join(f"{f} " + " ".join(f"{v:2d}" for v in row) + "\n" for f, row in zip(names, values))
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + rows)
    (folder / "identity_CelebA.txt").write_text("".join(f"{f} {rng.integers(1, 10178)}\n" for f in names))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n"
        + "".join(f"{f} {rng.integers(50, 150):5d} {rng.integers(50, 150):3d} {rng.integers(100, 300):3d} "
                  f"{rng.integers(100, 300):3d}\n" for f in names))
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{LANDMARKS}\n"
        + "".join(f"{f} " + "  ".join(f"{v:3d}" for v in rng.integers(60, 160, size=10)) + "\n" for f in names))
    return folder


def make_messy_folder(root: str | Path, n: int = 60, seed: int = 0) -> Path:
    """A folder of faces in mixed sizes, modes (L, RGBA, P) and formats, plus one of each bad file."""
    root = Path(root)
    (root / "sub").mkdir(parents=True, exist_ok=True)
    faces = SyntheticFaces((96, 80), seed=seed)
    batch = faces.images(np.arange(n)).permute(0, 2, 3, 1).numpy()
    modes = ["RGB", "L", "RGBA", "P"]
    exts = [".jpg", ".png", ".webp", ".bmp"]
    for i in range(n):
        img = Image.fromarray(batch[i])
        if i % 3 == 1:
            img = img.resize((120 + i, 100 + (i % 7) * 10))
        img = img.convert(modes[i % 4])
        ext = exts[i % 4] if modes[i % 4] != "RGBA" or exts[i % 4] in (".png", ".webp") else ".png"
        if img.mode in ("RGBA", "P") and ext == ".jpg":
            ext = ".png"
        (root / ("sub" if i % 2 else "") / f"face{i:03d}{ext}").write_bytes(b"")
        img.save(root / ("sub" if i % 2 else "") / f"face{i:03d}{ext}")
    for name, data in corrupt_files().items():
        (root / name).write_bytes(data)
    (root / "README.txt").write_text("not an image, and not an image extension\n")
    return root
