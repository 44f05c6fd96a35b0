"""N-Caltech101 (Orchard et al., 2015): Caltech101 images recorded by an ATIS sensor moved in
three saccades; 100 object classes plus ``BACKGROUND_Google``, 8246 samples, up to about
240×180 pixels.

Layout (the release's ``Caltech101.zip`` unpacked, or tonic's download):
``Caltech101/<class>/image_NNNN.bin`` (or ``NCALTECH101/Caltech101/…``), 40-bit ATIS binary
format. Classes are the class folders found, sorted.

There is no official split: samples are split per class by :func:`train.data.layout.seeded_split`
(default 20 % test, seed 0), so the same files always give the same split. As in tonic, each
sample's x and y are shifted so that its smallest coordinate is 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chipnet.errors import DatasetError
from chipnet.events import make_events
from chipnet.formats import parse_atis_bin, read_bytes
from train.data.dataset import EventDataset
from train.data.layout import (
    check_sensor,
    check_split,
    class_files,
    download_with_tonic,
    find_dir,
    missing,
    seeded_split,
)

_DIRS = ("Caltech101", "NCALTECH101/Caltech101", "N-Caltech101/Caltech101")
_ATIS = (304, 240, 2)


class NCaltech101(EventDataset):
    """N-Caltech101: ``dataset[i] -> (events, label)`` with a seeded per-class split."""

    name = "ncaltech101"
    sensor_size = (240, 180, 2)  # events beyond it (rare) are left out at binning
    classes: tuple[str, ...] = ()  # set per instance from the class folders
    hflip_safe = True
    needs_root = True
    source = (
        "Get Caltech101.zip from https://www.garrickorchard.com/datasets/n-caltech101 "
        "(Mendeley Data cy6cvx3ryv) and unpack it, or use --download."
    )

    def __init__(self, root: str | Path, split: str = "train", test_fraction: float = 0.2, seed: int = 0) -> None:
        check_split(self.name, split)
        self.root, self.split = Path(root), split
        folder = find_dir(root, _DIRS, ".")
        if folder is None:
            raise missing(self.name, root, "Caltech101/<class>/image_NNNN.bin", self.source)
        self.classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
        if not self.classes:
            raise DatasetError(f"{self.name}: {folder} has no class folders (incomplete extraction?)")
        files, targets = class_files(self.name, folder, self.classes, ".bin")
        keep = seeded_split(targets, split, test_fraction, seed)
        self.files, self.targets = [files[i] for i in keep], targets[keep]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        path = self.files[index]
        x, y, p, t = parse_atis_bin(read_bytes(path), str(path))
        check_sensor(path, x, y, _ATIS)
        if len(x):
            x, y = x - x.min(), y - y.min()
        return make_events(x, y, p, t), int(self.targets[index])

    @classmethod
    def download(cls, root: str | Path) -> None:
        """Fetch tonic's copy into ``root``."""
        download_with_tonic(cls.name, "NCALTECH101", root, {"all": {}})
