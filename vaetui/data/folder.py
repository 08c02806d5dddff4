"""Any folder tree of face images: a deterministic split and an optional attribute CSV.

The split is decided per file by a hash of its relative path (80/10/10), so adding images
never moves existing ones between splits. An `attributes.csv` in the root (a filename
column, then 0/1 columns) supplies attributes.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaetui.errors import DataError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
ATTRIBUTE_CSV = "attributes.csv"
SPLIT_PERCENT = {"train": (0, 80), "valid": (80, 90), "test": (90, 100)}


@dataclass
class FolderIndex:
    """Relative file paths per split, with attributes when a CSV is present."""

    folder: Path
    files: dict[str, list[str]]
    attribute_names: list[str]
    attributes: dict[str, np.ndarray]


def split_of(relpath: str) -> str:
    """train/valid/test for a file, a pure function of its relative path."""
    bucket = int.from_bytes(hashlib.blake2b(relpath.encode(), digest_size=8).digest(), "little") % 100
    for split, (lo, hi) in SPLIT_PERCENT.items():
        if lo <= bucket < hi:
            return split
    raise AssertionError(bucket)


def scan(root: str | Path) -> list[str]:
    """Image files under root (relative, sorted), skipping hidden folders such as caches."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"image folder {root} does not exist: pass --data-root PATH to a folder of images")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: pass --data-root PATH to a folder of images")
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in EXTENSIONS and path.is_file():
            found.append(rel.as_posix())
    if not found:
        raise DataError(f"no images (jpg, png, webp, bmp) in {root}: point --data-root at a folder that has some")
    return sorted(found)


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[bool]]]:
    """filename,attr1,attr2,... with 0/1 (or -1/1) values."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or len(rows[0]) < 2:
        raise DataError(f"{path} needs a header: filename,<attribute>,...")
    names = [n.strip() for n in rows[0][1:]]
    table = {}
    for n, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != len(names) + 1:
            raise DataError(f"{path} line {n} has {len(row)} columns, the header has {len(names) + 1}")
        try:
            table[row[0].strip()] = [int(v) > 0 for v in row[1:]]
        except ValueError:
            raise DataError(f"{path} line {n}: attribute values must be 0 or 1") from None
    return names, table


def load_index(root: str | Path) -> FolderIndex:
    """Scan the folder and split it; attach attributes from attributes.csv when present."""
    folder = Path(root).expanduser()
    files = scan(folder)
    by_split: dict[str, list[str]] = {s: [] for s in SPLIT_PERCENT}
    for f in files:
        by_split[split_of(f)].append(f)
    names: list[str] = []
    table: dict[str, list[bool]] = {}
    if (folder / ATTRIBUTE_CSV).exists():
        names, table = read_attributes(folder / ATTRIBUTE_CSV)
    default = [False] * len(names)
    attributes = {
        s: np.array([table.get(f, table.get(Path(f).name, default)) for f in fs], dtype=bool).reshape(len(fs), len(names))
        for s, fs in by_split.items()
    }
    return FolderIndex(folder, by_split, names, attributes)
