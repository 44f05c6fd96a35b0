"""Event datasets (one module each) and the shared event → tensor pipeline."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from train.data.events import to_frames, to_spikes
from train.data.synthgesture import SynthGesture
from train.errors import DatasetError
from train.atomic import atomic_write

DATASETS: dict[str, type] = {"synthgesture": SynthGesture}


def event_dataset(name: str, split: str, **options: Any):
    """The event dataset ``name`` for ``split`` (``dataset[i] -> (events, label)``)."""
    try:
        cls = DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None
    return cls(split=split, **options)


class FrameDataset(torch.utils.data.Dataset):
    """Samples as binary spike tensors ``[2, size, size, T]`` with their labels.

    The whole split is binned once and cached under ``cache_dir`` (keyed by dataset, split,
    size, T and the dataset options), so later epochs and runs do not touch events again.
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
    ) -> None:
        self.options = dict(options or {})
        self.events = event_dataset(name, split, **self.options)
        self.classes = tuple(self.events.classes)
        self.sensor_size = tuple(self.events.sensor_size)
        self.size, self.timesteps = size, timesteps
        key = json.dumps([name, split, size, timesteps, self.options], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        path = Path(cache_dir) / f"{name}-{split}-{size}px-T{timesteps}-{digest}.npz" if cache_dir else None
        if path is not None and path.exists():
            with np.load(path) as f:
                self.spikes, self.labels = f["spikes"], f["labels"]
        else:
            self.spikes, self.labels = self._bin(f"{name}/{split}")
            if path is not None:
                atomic_write(path, lambda fh: np.savez_compressed(fh, spikes=self.spikes, labels=self.labels))
        if limit is not None:
            self.spikes, self.labels = self.spikes[:limit], self.labels[:limit]

    def _bin(self, desc: str) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.events)
        spikes = np.zeros((n, 2, self.size, self.size, self.timesteps), dtype=np.uint8)
        labels = np.zeros(n, dtype=np.int64)
        for i in tqdm(range(n), desc=f"binning {desc}", leave=False):
            events, labels[i] = self.events[i]
            spikes[i] = to_spikes(to_frames(events, self.sensor_size, self.size, self.timesteps))
        return spikes, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.spikes[index].astype(np.float32)), int(self.labels[index])
