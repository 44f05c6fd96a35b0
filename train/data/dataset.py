"""The interface every event dataset implements (tonic's style: one small class per dataset).

A new dataset is a subclass in its own module plus one entry in ``train.data.DATASETS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from chipnet.errors import DatasetError


class EventDataset(ABC):
    """``dataset[i] -> (events, label)``: structured ``EVENT_DTYPE`` events (``x, y, p, t`` in µs)
    and the class index.

    Constructed as ``cls(split=..., **options)``, plus ``root=`` where ``needs_root``.
    """

    name: str
    """Registry key (``train.data.DATASETS``), also used in error messages."""
    sensor_size: tuple[int, int, int]
    """``(width, height, polarities)`` of the sensor; events lie in ``0 ≤ x < width``, ``0 ≤ y < height``."""
    classes: tuple[str, ...]
    """Class names, indexed by label (a dataset may set them per instance, from its files)."""
    needs_root: bool = False
    """Read from disk under a data root (then ``root`` is a constructor argument); generated sets are not."""
    hflip_safe: bool = False
    """Labels survive mirroring left–right (so ``Augment.hflip`` may be used)."""
    source: str = "Generated on the fly: no files to get."
    """Where the data comes from and how to get it (quoted when it is missing)."""
    duration_us: int | None = None
    """Length of every sample where that is fixed (the stream's default frame period), else None."""
    groups: np.ndarray | None = None
    """Per-sample group (e.g. the recorded subject) that a validation split holds out whole, or None."""

    split: str
    """``"train"`` or ``"test"``."""
    targets: np.ndarray
    """The label of every sample, in order."""
    root: Path
    """The data root read (only where ``needs_root``)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> tuple[np.ndarray, int]: ...

    @classmethod
    def download(cls, root: str | Path) -> None:
        """Fetch the dataset into ``root``; by default there is no automatic download."""
        raise DatasetError(f"{cls.name}: no automatic download. {cls.source}")
