"""Datasets behind one small interface: a split gives uint8 image batches by index.

Every source (synthetic faces, CelebA, an image folder) offers splits with
`len()`, `images(indices) -> uint8 (N, 3, H, W)`, `attributes(indices) -> bool (N, A)`
and `attribute_names`, so the engine and the screens never care where pixels came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

from vaetui.config.settings import DataConfig

if TYPE_CHECKING:  # torch stays unimported here so decode workers start fast
    import torch

SPLITS = ("train", "valid", "test")


class ImageSplit(Protocol):
    """What the engine and the explorers need from one split of a dataset."""

    size: tuple[int, int]
    attribute_names: Sequence[str]

    def __len__(self) -> int: ...

    def images(self, indices) -> "torch.Tensor": ...

    def attributes(self, indices) -> "torch.Tensor": ...


def open_split(config: DataConfig, split: str = "train", progress=None) -> ImageSplit:
    """The split of the configured dataset; train is cut to dataset_size when set."""
    if split not in SPLITS:
        from vaetui.errors import ConfigError

        raise ConfigError("split", f"must be one of {', '.join(SPLITS)}; got {split!r}")
    if config.source == "synthetic":
        from vaetui.data.synthetic import SyntheticFaces

        length = config.dataset_size if split == "train" else None
        return SyntheticFaces(config.size, seed=config.seed, split=split, length=length)
    from vaetui.data.sources import open_file_split

    return open_file_split(config, split, progress=progress)
