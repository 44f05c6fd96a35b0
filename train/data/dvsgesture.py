"""DVS128 Gesture (Amir et al., CVPR 2017): 11 hand and arm gestures, 29 subjects, 3 lighting
conditions, 128×128 DVS128, split by the release's trials files.

Reads either layout:

- **IBM release** (``DvsGesture.tar.gz`` from https://research.ibm.com/dvsgesture/): a folder
  ``DvsGesture/`` with ``userNN_<lighting>.aedat`` (AEDAT 3.1), ``userNN_<lighting>_labels.csv``
  (``class,startTime_usec,endTime_usec``, classes 1–11) and ``trials_to_train.txt`` /
  ``trials_to_test.txt``. One sample per labelled window: the events with start ≤ t < end,
  timestamps as recorded (µs).
- **tonic's download** (``tonic.datasets.DVSGesture``): ``DVSGesture/ibmGesture{Train,Test}/
  userNN_<lighting>/<label>.npy``, one pre-cut gesture per file, ``(N, 4)`` rows
  ``[x, y, p, t]`` with ``t`` in ms (converted to µs here, as tonic does).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from chipnet.errors import DatasetError
from chipnet.events import make_events
from chipnet.formats import parse_aedat31, parse_gesture_labels, parse_name_list, parse_npy, read_bytes
from train.data.dataset import EventDataset
from train.data.layout import check_sensor, check_split, download_with_tonic, find_dir, list_files, missing

CLASSES = (
    "hand_clap",
    "right_hand_wave",
    "left_hand_wave",
    "right_arm_clockwise",
    "right_arm_counter_clockwise",
    "left_arm_clockwise",
    "left_arm_counter_clockwise",
    "arm_roll",
    "air_drums",
    "air_guitar",
    "other",
)
_IBM_DIRS = ("DvsGesture", ".")
_TONIC_DIRS = ("DVSGesture", ".")
_TONIC_SPLIT = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}


def _user(name: str) -> str:
    """``user07`` from ``user07_led``; a name not in that form is its own group (one recording)."""
    match = re.match(r"user\d+", name)
    return match.group(0) if match else name


class DVSGesture(EventDataset):
    """DVS128 Gesture: ``dataset[i] -> (events, label)`` for ``split`` ``"train"``/``"test"``.

    ``layout`` is ``"auto"`` (IBM release if present, else tonic's), ``"ibm"`` or ``"tonic"``.
    """

    name = "dvsgesture"
    sensor_size = (128, 128, 2)
    classes = CLASSES  # not hflip_safe: mirroring swaps left and right gestures
    needs_root = True
    source = (
        "Get DvsGesture.tar.gz from https://research.ibm.com/dvsgesture/ and unpack it, "
        "or fetch tonic's copy with --download."
    )

    def __init__(self, root: str | Path, split: str = "train", layout: str = "auto") -> None:
        check_split(self.name, split)
        if layout not in ("auto", "ibm", "tonic"):
            raise DatasetError(f"{self.name}: unknown layout {layout!r}; expected auto, ibm or tonic")
        self.root, self.split = Path(root), split
        ibm = find_dir(root, _IBM_DIRS, f"trials_to_{split}.txt") if layout != "tonic" else None
        tonic = find_dir(root, _TONIC_DIRS, _TONIC_SPLIT[split]) if layout != "ibm" and ibm is None else None
        if ibm is not None:
            self.layout = "ibm"
            self._index_ibm(ibm)
        elif tonic is not None:
            self.layout = "tonic"
            self._index_tonic(tonic / _TONIC_SPLIT[split])
        else:
            expected = {
                "ibm": f"DvsGesture/trials_to_{split}.txt with its .aedat and _labels.csv files",
                "tonic": f"DVSGesture/{_TONIC_SPLIT[split]}/userNN_<lighting>/<label>.npy",
            }
            wanted = " or ".join(v for k, v in expected.items() if layout in ("auto", k))
            raise missing(self.name, root, wanted, self.source)
        self._cached: tuple[int, np.ndarray] | None = None

    @property
    def groups(self) -> np.ndarray:
        """The user of each sample (``userNN``), so a validation split can hold out whole users."""
        if self.layout == "tonic":
            return np.array([_user(f.parent.name) for f in self.files])
        return np.array([_user(p.stem) for p in self.recordings])[self.windows[:, 0]]

    def _index_ibm(self, folder: Path) -> None:
        trials = folder / f"trials_to_{self.split}.txt"
        self.recordings: list[Path] = []
        windows = []
        for name in parse_name_list(read_bytes(trials), str(trials)):
            aedat = folder / name
            labels = folder / (
                name[: -len(".aedat")] + "_labels.csv" if name.endswith(".aedat") else name + "_labels.csv"
            )
            for path in (aedat, labels):
                if not path.is_file():
                    raise DatasetError(f"{trials}: lists {name}, but {path} does not exist (incomplete download?)")
            rows = parse_gesture_labels(read_bytes(labels), str(labels), len(CLASSES))
            windows.append(np.column_stack([np.full(len(rows), len(self.recordings)), rows]))
            self.recordings.append(aedat)
        self.windows = np.concatenate(windows)  # rows: recording, label, start_us, end_us
        self.targets = self.windows[:, 1].copy()

    def _index_tonic(self, folder: Path) -> None:
        self.files: list[Path] = []
        for user in sorted(p for p in folder.iterdir() if p.is_dir()):
            for f in list_files(user, ".npy"):
                if not f.stem.isdigit() or not 0 <= int(f.stem) < len(CLASSES):
                    raise DatasetError(f"{f}: file name should be the label 0–{len(CLASSES) - 1}")
                self.files.append(f)
        if not self.files:
            raise missing(self.name, self.root, f"<label>.npy files under {folder}/userNN_<lighting>/", self.source)
        self.targets = np.array([int(f.stem) for f in self.files], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self.layout == "tonic":
            return self._tonic_events(self.files[index]), int(self.targets[index])
        rec, label, start, end = (int(v) for v in self.windows[index])
        events = self.recording(rec)
        lo, hi = np.searchsorted(events["t"], [start, end], side="left")
        return events[lo:hi], label

    def recording(self, rec: int) -> np.ndarray:
        """All polarity events of recording ``rec`` (the last one parsed is kept)."""
        if self._cached is None or self._cached[0] != rec:
            path = self.recordings[rec]
            x, y, p, t = parse_aedat31(read_bytes(path), str(path), chip="DVS128")
            check_sensor(path, x, y, self.sensor_size)
            self._cached = (rec, make_events(x, y, p, t))
        return self._cached[1]

    def _tonic_events(self, path: Path) -> np.ndarray:
        arr = parse_npy(read_bytes(path), str(path))
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise DatasetError(f"{path}: expected an (N, 4) array of [x, y, p, t], got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise DatasetError(f"{path}: holds NaN or infinite values")
        x, y, p = (arr[:, i].astype(np.int64) for i in range(3))
        check_sensor(path, x, y, self.sensor_size)
        if len(p) and not np.isin(p, (0, 1)).all():
            raise DatasetError(f"{path}: polarity column holds values other than 0 and 1")
        t = np.rint(arr[:, 3].astype(np.float64) * 1000).astype(np.int64)  # ms → µs
        return make_events(x, y, p, t)

    @classmethod
    def download(cls, root: str | Path) -> None:
        """Fetch tonic's copy (both splits) into ``root``."""
        download_with_tonic(cls.name, "DVSGesture", root, {"train": {"train": True}, "test": {"train": False}})
