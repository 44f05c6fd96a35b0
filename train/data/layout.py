"""Where datasets live on disk: finding their folder, clear errors when they are missing, the
documented seeded split for datasets without an official one, and ``--download`` through tonic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np

from chipnet.errors import DatasetError

DEFAULT_DATA_ROOT = "data"
SPLITS = ("train", "test")


def check_split(name: str, split: str) -> None:
    """Reject split names other than train/test, naming the dataset."""
    if split not in SPLITS:
        raise DatasetError(f"{name}: unknown split {split!r}; expected one of {list(SPLITS)}")


def find_dir(root: str | Path, candidates: Iterable[str], marker: str) -> Path | None:
    """The first ``root/candidate`` that contains ``marker`` (a file or folder), else None."""
    for candidate in candidates:
        folder = Path(root) / candidate
        if (folder / marker).exists():
            return folder
    return None


def missing(name: str, root: str | Path, expected: str, source: str) -> DatasetError:
    """The error for a dataset that is not where it should be: what, where, and how to get it."""
    return DatasetError(
        f"{name}: dataset not found under {Path(root).resolve()}: expected {expected}. {source} "
        f"Point --data-root at the folder that holds it."
    )


def natural_key(path: Path) -> tuple:
    """Sort key that puts ``img_2`` before ``img_10``."""
    return tuple(int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path.name))


def list_files(folder: Path, suffix: str) -> list[Path]:
    """Files with ``suffix`` directly in ``folder``, in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffix)), key=natural_key)


def seeded_split(targets: np.ndarray, split: str, test_fraction: float, seed: int) -> np.ndarray:
    """Indices of ``split`` in a per-class shuffled split: ``round(test_fraction · n_c)`` of each
    class ``c`` go to test. The same targets, fraction and seed always give the same split."""
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(targets):
        members = np.flatnonzero(targets == c)
        members = members[rng.permutation(len(members))]
        n_test = int(round(test_fraction * len(members)))
        chosen.append(members[:n_test] if split == "test" else members[n_test:])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def download_with_tonic(name: str, tonic_class: str, root: str | Path, splits: dict[str, dict]) -> None:
    """Download ``tonic.datasets.<tonic_class>`` into ``root`` (tonic's own layout)."""
    try:
        import tonic.datasets  # optional: pulls librosa/numba, so not part of the pinned stack
    except ImportError:
        raise DatasetError(
            f"{name}: --download needs tonic (pip install tonic -c constraints.txt), or download the "
            f"files yourself as described in the error without --download"
        ) from None
    cls = getattr(tonic.datasets, tonic_class)
    for split, kwargs in splits.items():
        try:
            cls(save_to=str(root), **kwargs)
        except Exception as e:  # network and archive errors of any kind end the download the same way
            raise DatasetError(f"{name}: download of the {split} split into {root} failed: {e}") from None


def check_sensor(path: str | Path, x: np.ndarray, y: np.ndarray, sensor_size: tuple[int, int, int]) -> None:
    """Raise if any event lies outside the sensor: the file is not what it claims to be."""
    width, height, _ = sensor_size
    if len(x) and (x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height):
        raise DatasetError(
            f"{path}: events at x {x.min()}–{x.max()}, y {y.min()}–{y.max()} fall outside the "
            f"{width}×{height} sensor (wrong or corrupt file)"
        )


def class_files(name: str, folder: Path, classes: Iterable[str], suffix: str) -> tuple[list[Path], np.ndarray]:
    """Files ``folder/<class>/*<suffix>`` of every class (natural order) and their class indices;
    a missing or empty class folder is an incomplete dataset."""
    files: list[Path] = []
    targets: list[int] = []
    for index, cls in enumerate(classes):
        sub = folder / cls
        if not sub.is_dir():
            raise DatasetError(f"{name}: class folder {sub} is missing (incomplete download or extraction?)")
        found = list_files(sub, suffix)
        if not found:
            raise DatasetError(f"{name}: class folder {sub} has no *{suffix} files (incomplete extraction?)")
        files += found
        targets += [index] * len(found)
    return files, np.asarray(targets, dtype=np.int64)
