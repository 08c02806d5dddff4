"""Splits backed by files on disk (CelebA, an image folder), served from the decode-once cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaetui.config.settings import DataConfig
from vaetui.data import cache as cache_mod
from vaetui.errors import DataError


class CachedSplit:
    """One split as a memory-mapped uint8 array; images(indices) is an array slice."""

    def __init__(self, files: list[str], attribute_names, attributes: np.ndarray, cache: cache_mod.Cache,
                 size: tuple[int, int], identity: np.ndarray | None = None):
        self.size = size
        self.cache = cache
        rows = cache.good
        self._rows = rows
        self.files = [files[i] for i in rows]
        self.attribute_names = list(attribute_names)
        self._attributes = attributes[rows] if len(attributes) else np.zeros((len(rows), 0), bool)
        self.identity = identity[rows] if identity is not None else None
        self.skipped = cache.skipped

    def __len__(self) -> int:
        return len(self._rows)

    def images(self, indices) -> torch.Tensor:
        """uint8 (N, 3, H, W) for these indices (sorted reads are fastest, any order works)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self._rows)):
            raise IndexError(f"index out of range for a split of {len(self._rows)} images")
        return torch.from_numpy(np.ascontiguousarray(self.cache.array[self._rows[idx]]))

    def attributes(self, indices) -> torch.Tensor:
        return torch.from_numpy(self._attributes[np.asarray(indices, dtype=np.int64)])


def file_index(config: DataConfig):
    """The CelebA or folder index for a config (file lists per split, attributes)."""
    if config.source == "celeba":
        from vaetui.data import celeba

        return celeba.load_index(config.root)
    if config.source == "folder":
        from vaetui.data import folder

        return folder.load_index(config.root)
    raise DataError(f"{config.source} is not a file-backed source")


def image_folder(config: DataConfig, index) -> Path:
    """The folder the index's file names are relative to."""
    return Path(index.folder) / ("img_align_celeba" if config.source == "celeba" else "")


def split_files(config: DataConfig, index, split: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Files, attributes and identities of a split; train is cut to dataset_size (a fixed subset: the first N)."""
    files = index.files[split]
    attrs = index.attributes[split]
    ident = getattr(index, "identity", {}).get(split) if hasattr(index, "identity") else None
    if split == "train" and config.dataset_size is not None:
        files, attrs = files[: config.dataset_size], attrs[: config.dataset_size]
        ident = ident[: config.dataset_size] if ident is not None else None
    return files, attrs, ident


def open_file_split(config: DataConfig, split: str, progress=None, index=None) -> CachedSplit:
    """A cached split of CelebA or an image folder; bad files are skipped and logged."""
    index = index or file_index(config)
    files, attrs, ident = split_files(config, index, split)
    if not files:
        raise DataError(f"the {split} split of {index.folder} is empty: add images (or check the partition file)")
    name = f"{config.source}-{split}"
    cache = cache_mod.build_or_open(image_folder(config, index), files, config.size, config.geometry, name,
                                    progress=progress)
    if len(cache.good) == 0:
        raise DataError(f"none of the {len(files)} {split} images in {index.folder} could be read "
                        f"(see {cache.log})")
    return CachedSplit(files, index.attribute_names, attrs, cache, config.size, ident)
