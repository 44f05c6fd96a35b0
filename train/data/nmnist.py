"""N-MNIST (Orchard et al., 2015): MNIST digits recorded by an ATIS sensor moved in three
saccades; 34×34 pixels, 60 000 train and 10 000 test samples (the official split).

Layout (the release's ``Train.zip`` / ``Test.zip`` unpacked, or tonic's download):
``[NMNIST/]Train/<digit>/<nnnnn>.bin`` and ``[NMNIST/]Test/<digit>/<nnnnn>.bin``, each file in the
40-bit ATIS binary format (:func:`chipnet.formats.parse_atis_bin`).

lava-dl's ``slayer.io.read_2d_spikes`` reads the same format (the tests check that both agree),
but it converts bytes in a Python loop, has no overflow markers, and shifts polarity so that its
minimum is 0 (a sample with only ON events would come back all OFF), so it is not used here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chipnet.events import make_events
from chipnet.formats import parse_atis_bin, read_bytes
from train.data.dataset import EventDataset
from train.data.layout import check_sensor, check_split, class_files, download_with_tonic, find_dir, missing

_DIRS = ("NMNIST", "N-MNIST", ".")
_SPLIT_DIR = {"train": "Train", "test": "Test"}


class NMNIST(EventDataset):
    """N-MNIST: ``dataset[i] -> (events, label)`` for ``split`` ``"train"``/``"test"``."""

    name = "nmnist"
    sensor_size = (34, 34, 2)
    classes = tuple(str(d) for d in range(10))  # not hflip_safe: mirrored digits are not digits
    needs_root = True
    source = (
        "Get Train.zip and Test.zip from https://www.garrickorchard.com/datasets/n-mnist "
        "(Mendeley Data 468j46mzdv) and unpack them, or use --download."
    )

    def __init__(self, root: str | Path, split: str = "train") -> None:
        check_split(self.name, split)
        self.root, self.split = Path(root), split
        folder = find_dir(root, _DIRS, _SPLIT_DIR[split])
        if folder is None:
            raise missing(
                self.name, root, f"{_SPLIT_DIR[split]}/<digit>/*.bin (or NMNIST/{_SPLIT_DIR[split]}/…)", self.source
            )
        self.files, self.targets = class_files(self.name, folder / _SPLIT_DIR[split], self.classes, ".bin")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        path = self.files[index]
        x, y, p, t = parse_atis_bin(read_bytes(path), str(path))
        check_sensor(path, x, y, self.sensor_size)
        return make_events(x, y, p, t), int(self.targets[index])

    @classmethod
    def download(cls, root: str | Path) -> None:
        """Fetch tonic's copy (both splits) into ``root``."""
        download_with_tonic(cls.name, "NMNIST", root, {"train": {"train": True}, "test": {"train": False}})
