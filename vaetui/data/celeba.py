"""CelebA in torchvision's folder layout: splits from the partition file, 40 attributes, identities.

    ROOT/celeba/img_align_celeba/000001.jpg ...
    ROOT/celeba/list_eval_partition.txt, list_attr_celeba.txt, identity_CelebA.txt,
    ROOT/celeba/list_bbox_celeba.txt, list_landmarks_align_celeba.txt

ROOT may also be the celeba folder itself. Nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaetui.errors import DataError

WHERE_TO_GET = ("get CelebA from the authors' page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html) "
                "and unpack it in torchvision's layout")
IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = "list_attr_celeba.txt"
IDENTITY = "identity_CelebA.txt"
BBOX = "list_bbox_celeba.txt"
LANDMARKS = "list_landmarks_align_celeba.txt"
REQUIRED = (PARTITION, ATTRIBUTES)
OPTIONAL = (IDENTITY, BBOX, LANDMARKS)
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


@dataclass
class CelebAIndex:
    """File names per split with their attributes and identities."""

    folder: Path
    files: dict[str, list[str]]
    attribute_names: list[str]
    attributes: dict[str, np.ndarray]  # split -> (N, 40) bool
    identity: dict[str, np.ndarray]  # split -> (N,) int (-1 when identity_CelebA.txt is absent)


def find_folder(root: str | Path) -> Path:
    """The folder holding img_align_celeba: ROOT/celeba or ROOT itself."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"CelebA root {root} does not exist: pass --data-root PATH to a folder with "
                        f"celeba/{IMAGES}/ ({WHERE_TO_GET})")
    for folder in (root / "celeba", root):
        if (folder / IMAGES).is_dir():
            return folder
    raise DataError(f"no {IMAGES}/ folder in {root} or {root / 'celeba'}: {WHERE_TO_GET}")


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path.name} is missing from {path.parent}: {WHERE_TO_GET}") from None


def read_partition(folder: Path) -> dict[str, int]:
    """file name -> 0 (train), 1 (valid), 2 (test)."""
    out = {}
    for n, line in enumerate(_read_lines(folder / PARTITION), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{folder / PARTITION} line {n} is not '<file> <0|1|2>': {line[:60]!r}")
        out[parts[0]] = int(parts[1])
    if not out:
        raise DataError(f"{folder / PARTITION} is empty: {WHERE_TO_GET}")
    return out


def read_table(path: Path, header_row: bool = True) -> tuple[list[str], dict[str, list[int]]]:
    """CelebA's text tables: a count line, a header line of column names, then '<file> v1 v2 ...'."""
    lines = _read_lines(path)
    if header_row:
        if len(lines) < 2:
            raise DataError(f"{path} is too short to be a CelebA table")
        names = lines[1].split()
        rows = lines[2:]
    else:
        names, rows = [], lines
    table = {}
    for n, line in enumerate(rows, 3 if header_row else 1):
        parts = line.split()
        if not parts:
            continue
        try:
            table[parts[0]] = [int(v) for v in parts[1:]]
        except ValueError:
            raise DataError(f"{path} line {n} has a non-integer value: {line[:60]!r}") from None
    if header_row and names and names[0] == "image_id":  # the bbox file names its first column
        names = names[1:]
    return names, table


def load_index(root: str | Path) -> CelebAIndex:
    """Read the partition, attributes and identities; check they agree with the images present."""
    folder = find_folder(root)
    for name in REQUIRED:
        if not (folder / name).exists():
            raise DataError(f"{name} is missing from {folder}: {WHERE_TO_GET}")
    partition = read_partition(folder)
    attr_names, attrs = read_table(folder / ATTRIBUTES)
    ident: dict[str, list[int]] = {}
    if (folder / IDENTITY).exists():
        _, ident = read_table(folder / IDENTITY, header_row=False)
    present = {p.name for p in (folder / IMAGES).iterdir()}
    missing = [f for f in partition if f not in present]
    if missing:
        raise DataError(f"{PARTITION} lists {len(missing)} images that are not in {folder / IMAGES} "
                        f"(first: {missing[0]}): restore them or use a partition file for the images you have")
    no_attr = [f for f in partition if f not in attrs]
    if no_attr:
        raise DataError(f"{ATTRIBUTES} has no row for {len(no_attr)} images (first: {no_attr[0]})")
    files: dict[str, list[str]] = {s: [] for s in SPLIT_CODES}
    code_to_split = {v: k for k, v in SPLIT_CODES.items()}
    for f in sorted(partition):
        files[code_to_split[partition[f]]].append(f)
    attributes = {s: np.array([attrs[f] for f in fs], dtype=np.int8).reshape(len(fs), len(attr_names)) > 0
                  for s, fs in files.items()}
    identity = {s: np.array([ident.get(f, [-1])[0] for f in fs], dtype=np.int64) for s, fs in files.items()}
    return CelebAIndex(folder, files, attr_names, attributes, identity)
