"""Event datasets (one module each) and the shared event → tensor pipeline."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chipnet.atomic import atomic_write
from chipnet.errors import DatasetError
from chipnet.events import BINNINGS, ENCODINGS, denoise, encode, to_frames
from chipnet.progress import progress_bar
from train.data.augment import Augment
from train.data.cifar10dvs import CIFAR10DVS
from train.data.dataset import EventDataset
from train.data.dvsgesture import DVSGesture
from train.data.layout import DEFAULT_DATA_ROOT
from train.data.ncaltech101 import NCaltech101
from train.data.ndigits import NDigits
from train.data.nmnist import NMNIST
from train.data.splits import stratified_subset
from train.data.synthgesture import SynthGesture

# Keyed by each class's own ``name``, so the registry and the datasets' messages cannot disagree.
DATASETS: dict[str, type[EventDataset]] = {
    cls.name: cls
    for cls in (
        SynthGesture,
        NDigits,
        DVSGesture,
        CIFAR10DVS,
        NCaltech101,
        NMNIST,
    )
}
CACHE_VERSION = 2  # bump when parsing or binning changes, so old caches are not reused

__all__ = [
    "DATASETS",
    "Augment",
    "EventDataset",
    "FrameDataset",
    "FrameSubset",
    "calibration_spikes",
    "download_dataset",
    "event_dataset",
]


def _dataset_class(name: str) -> type[EventDataset]:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def event_dataset(name: str, split: str, data_root: str | os.PathLike | None = None, **options: Any) -> EventDataset:
    """The event dataset ``name`` for ``split`` (``dataset[i] -> (events, label)``).

    Datasets read from disk look under ``data_root`` (default ``data/``); generated ones ignore it.
    """
    cls = _dataset_class(name)
    kwargs = dict(options, split=split)
    if cls.needs_root:
        kwargs["root"] = data_root if data_root is not None else DEFAULT_DATA_ROOT
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as e:
        raise DatasetError(f"{name}: bad dataset options {options}: {e}") from None
    return cls(**kwargs)


def download_dataset(name: str, data_root: str | os.PathLike | None = None) -> None:
    """Download ``name`` into ``data_root`` where that is possible (through tonic)."""
    cls = _dataset_class(name)
    if not cls.needs_root:
        return  # generated: nothing to download
    cls.download(data_root if data_root is not None else DEFAULT_DATA_ROOT)


class _Binner(torch.utils.data.Dataset):
    """Sample ``i`` of an event dataset as a uint8 tensor (what the cache stores): spikes or clipped counts."""

    def __init__(self, events: EventDataset, size: int, timesteps: int, denoise_us: int, binning: str, encoding: str):
        self.events, self.size, self.timesteps, self.denoise_us = events, size, timesteps, denoise_us
        self.binning, self.encoding = binning, encoding

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        ev, label = self.events[index]
        sensor = tuple(self.events.sensor_size)
        if self.denoise_us > 0:
            ev = denoise(ev, sensor, self.denoise_us)
        frames = to_frames(ev, sensor, self.size, self.timesteps, binning=self.binning)
        return encode(frames, self.encoding), int(label)


def _as_list(batch: list) -> list:
    return batch


class FrameDataset(torch.utils.data.Dataset):
    """Samples as input tensors ``[2, size, size, T]`` with their labels: binary spikes, or event
    counts (``encoding="counts"``), in frames of equal time or equal event count (``binning``).

    The whole split is binned once and cached under ``cache_dir`` (keyed by dataset, split,
    size, T, the dataset options, its data folder and ``denoise_us``), so later epochs and runs
    do not touch events again. ``workers`` parse and bin in parallel (DataLoader workers, each
    given contiguous runs of samples so a recording is parsed once per run); ``augment`` is
    applied in ``__getitem__`` (use it for the training split only).
    """

    def __init__(
        self,
        name: str,
        split: str,
        size: int,
        timesteps: int,
        options: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike | None = ".cache/tensors",
        limit: int | None = None,
        *,
        data_root: str | os.PathLike | None = None,
        denoise_us: int = 0,
        augment: Augment | None = None,
        workers: int = 0,
        binning: str = "time",
        encoding: str = "spikes",
    ) -> None:
        if binning not in BINNINGS or encoding not in ENCODINGS:
            raise DatasetError(f"binning must be one of {BINNINGS} and encoding one of {ENCODINGS}")
        self.binning, self.encoding = binning, encoding
        self.options = dict(options or {})
        self.events = event_dataset(name, split, data_root, **self.options)
        self.classes = tuple(self.events.classes)
        self.sensor_size = tuple(self.events.sensor_size)
        self.size, self.timesteps, self.denoise_us, self.workers = size, timesteps, int(denoise_us), workers
        if augment is not None and augment.hflip and not self.events.hflip_safe:
            raise DatasetError(f"{name}: augment.hflip would break labels (mirroring changes its classes); turn it off")
        self.augment = augment
        where = str(Path(self.events.root).resolve()) if self.events.needs_root else None
        # The default frames keep their old key, so existing caches stay valid.
        form = [] if (binning, encoding) == ("time", "spikes") else [binning, encoding]
        key = json.dumps(
            [CACHE_VERSION, name, split, size, timesteps, self.options, where, self.denoise_us, *form], sort_keys=True
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        path = Path(cache_dir) / f"{name}-{split}-{size}px-T{timesteps}-{digest}.npz" if cache_dir else None
        if path is not None and path.exists():
            with np.load(path) as f:
                self.spikes, self.labels = f["spikes"], f["labels"]
        else:
            self.spikes, self.labels = self._bin(f"{name}/{split}")
            if path is not None:
                atomic_write(path, lambda fh: np.savez_compressed(fh, spikes=self.spikes, labels=self.labels))
        # Per-sample groups (DVS Gesture's users) come from the index, not the cache: the
        # validation split holds out whole groups where a dataset has them.
        groups = self.events.groups
        self.groups = None if groups is None else np.asarray(groups)
        if limit is not None:
            self.spikes, self.labels = self.spikes[:limit], self.labels[:limit]
            self.groups = None if self.groups is None else self.groups[:limit]

    def _bin(self, desc: str) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.events)
        spikes = np.zeros((n, 2, self.size, self.size, self.timesteps), dtype=np.uint8)
        labels = np.zeros(n, dtype=np.int64)
        binner = _Binner(self.events, self.size, self.timesteps, self.denoise_us, self.binning, self.encoding)
        if self.workers > 0 and n > 1:
            chunk = max(1, math.ceil(n / (self.workers * 8)))
            loader = torch.utils.data.DataLoader(
                binner, batch_size=chunk, num_workers=self.workers, collate_fn=_as_list
            )
            i = 0
            with progress_bar(total=n, desc=f"binning {desc}", leave=False) as bar:
                for batch in loader:
                    for s, label in batch:
                        spikes[i], labels[i] = s, label
                        i += 1
                    bar.update(len(batch))
        else:
            for i in progress_bar(range(n), desc=f"binning {desc}", leave=False):
                spikes[i], labels[i] = binner[i]
        return spikes, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return _sample(self.spikes[index], self.augment), int(self.labels[index])


def _sample(spikes: np.ndarray, augment: Augment | None) -> torch.Tensor:
    """One cached uint8 sample as a float tensor, augmented if asked."""
    x = torch.from_numpy(spikes.astype(np.float32))
    return augment(x) if augment is not None else x


class FrameSubset(torch.utils.data.Dataset):
    """Samples ``indices`` of a :class:`FrameDataset` (e.g. the train or validation part of its split).

    An index view: it shares the base's cached tensors (nothing is binned or copied again) and
    applies its own ``augment``, so the validation part of an augmented split stays plain.
    """

    def __init__(self, base: FrameDataset, indices: np.ndarray, augment: Augment | None = None) -> None:
        self.base, self.indices, self.augment = base, np.asarray(indices, dtype=np.int64), augment
        self.classes = base.classes
        self.labels = base.labels[self.indices]
        self.groups = None if base.groups is None else base.groups[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return _sample(self.base.spikes[self.indices[index]], self.augment), int(self.labels[index])

    def spikes_at(self, positions: np.ndarray) -> np.ndarray:
        """The raw uint8 tensors of the view's samples ``positions`` (a copy of only those)."""
        return self.base.spikes[self.indices[np.asarray(positions, dtype=np.int64)]]


def calibration_spikes(train_set: FrameSubset, n: int, seed: int) -> np.ndarray:
    """``n`` samples of the train part for SMA calibration: seeded and class-stratified.

    Not the first ``n`` (a split ordered by class or recording would calibrate on a few classes),
    and never validation or test samples.
    """
    return train_set.spikes_at(stratified_subset(train_set.labels, n, seed))
