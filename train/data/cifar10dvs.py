"""CIFAR10-DVS (Li et al., 2017): 10 000 CIFAR-10 images (1000 per class) moved on a monitor in
front of a DVS128; 128×128, AEDAT 2.0 files.

Layout (the figshare release, one zip per class unpacked): ``[CIFAR10DVS/]<class>/
cifar10_<class>_<n>.aedat``. Addresses are jAER DVS128 addresses; as in SpikingJelly (and
events-tfds), the image is put upright with ``x = 127 - y_raw``, ``y = 127 - x_raw`` and
polarity ``1 - p_raw``.

There is no official split: samples are split per class by :func:`train.data.layout.seeded_split`
(default 10 % test, the 9:1 ratio most papers use, seed 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chipnet.events import make_events
from chipnet.formats import decode_dvs128, parse_aedat2, read_bytes
from train.data.dataset import EventDataset
from train.data.layout import check_split, class_files, find_dir, missing, seeded_split

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_DIRS = ("CIFAR10DVS", "CIFAR10-DVS", ".")


class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS: ``dataset[i] -> (events, label)`` with a seeded per-class split."""

    name = "cifar10dvs"
    sensor_size = (128, 128, 2)
    classes = CLASSES
    hflip_safe = True
    needs_root = True
    source = (
        "Get the ten class zips (AEDAT 2.0) from https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 "
        "(Li et al. 2017) and unpack them into one folder. (tonic's download is a converted "
        "AEDAT 4 copy, which this loader does not read.)"
    )

    def __init__(self, root: str | Path, split: str = "train", test_fraction: float = 0.1, seed: int = 0) -> None:
        check_split(self.name, split)
        self.root, self.split = Path(root), split
        folder = find_dir(root, _DIRS, CLASSES[0])
        if folder is None:
            raise missing(
                self.name, root, "CIFAR10DVS/<class>/cifar10_<class>_<n>.aedat for the 10 classes", self.source
            )
        files, targets = class_files(self.name, folder, CLASSES, ".aedat")
        keep = seeded_split(targets, split, test_fraction, seed)
        self.files, self.targets = [files[i] for i in keep], targets[keep]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        path = self.files[index]
        address, t = parse_aedat2(read_bytes(path), str(path), chip="DVS128")
        x, y, p, retina = decode_dvs128(address)
        return make_events(127 - y[retina], 127 - x[retina], 1 - p[retina], t[retina]), int(self.targets[index])
