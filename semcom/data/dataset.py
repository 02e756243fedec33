"""The in-memory image dataset every part of semcom reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

__all__ = ["ImageDataset"]


@dataclass(frozen=True)
class ImageDataset:
    """Images as ``uint8`` ``[N, C, H, W]`` with integer labels, in a fixed, deterministic order.

    Pixels are handed out as floats in [0, 1] (``x / 255``), the convention of all metrics.

    Attributes:
        name: registry name (``mnist``, ``cifar10``, ...).
        split: ``train`` or ``test``.
        pixels: ``[N, C, H, W]`` ``torch.uint8``.
        labels: ``[N]`` ``torch.int64``.
        classes: class names, index = label.
        indices: ``[N]`` positions of these images in the official split (for provenance).
    """

    name: str
    split: str
    pixels: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    indices: torch.Tensor

    def __post_init__(self) -> None:
        if self.pixels.dtype != torch.uint8 or self.pixels.dim() != 4:
            raise ValueError(f"pixels must be uint8 [N, C, H, W], got {self.pixels.dtype} {tuple(self.pixels.shape)}")
        if not (len(self.pixels) == len(self.labels) == len(self.indices)):
            raise ValueError("pixels, labels and indices must have the same length")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.pixels.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def images(self, index: slice | Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """Float images in [0, 1], ``[n, C, H, W]`` (all of them when ``index`` is None)."""
        px = self.pixels if index is None else self.pixels[index]
        return px.float().div_(255.0)

    def mean_image(self) -> torch.Tensor:
        """The dataset's mean image ``[C, H, W]`` (what an SSCC receiver shows on outage)."""
        return self.pixels.float().mean(dim=0).div_(255.0)

    def subset(self, count: int | None = None, *, keep: torch.Tensor | None = None) -> ImageDataset:
        """The first ``count`` images (after an optional boolean ``keep`` mask); order preserved."""
        sel = torch.arange(len(self)) if keep is None else torch.nonzero(keep, as_tuple=False).flatten()
        if count is not None:
            if count <= 0:
                raise ValueError(f"subset size must be positive, got {count}")
            sel = sel[:count]
        return ImageDataset(self.name, self.split, self.pixels[sel], self.labels[sel], self.classes,
                            self.indices[sel])

    def split_validation(self, count: int, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
        """``(train, validation)``: ``count`` images drawn at random (seeded) become the validation split.

        The same ``count`` and ``seed`` on the same dataset always give the same split; both parts keep
        the dataset's order and their ``indices`` say which official images they are.
        """
        if not 0 < count < len(self):
            raise ValueError(f"validation split of {count} images from {len(self)}: need 0 < count < {len(self)}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        held = torch.zeros(len(self), dtype=torch.bool)
        held[order[:count]] = True
        train, val = self.subset(keep=~held), self.subset(keep=held)
        return train, replace(val, split="validation")

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images [b, C, H, W] float, labels [b])``; no per-sample Python work."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        stop = len(self) - (len(self) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            sel = order[start:start + batch_size]
            yield self.images(sel), self.labels[sel]

    @classmethod
    def from_numpy(cls, name: str, split: str, pixels: np.ndarray, labels: np.ndarray,
                   classes: Sequence[str], indices: np.ndarray | None = None) -> ImageDataset:
        idx = np.arange(len(labels)) if indices is None else indices
        return cls(name, split, torch.from_numpy(np.array(pixels, dtype=np.uint8, copy=True)),
                   torch.from_numpy(np.asarray(labels, dtype=np.int64)), tuple(classes),
                   torch.from_numpy(np.asarray(idx, dtype=np.int64)))
