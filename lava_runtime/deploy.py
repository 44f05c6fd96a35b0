"""Run an exported network on dataset samples and build its report (what ``run`` does)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py
import json

from lava_runtime.errors import RuntimeConfigError
from lava_runtime.report import build_report
from lava_runtime.simulate import run_layers
from train.data import FrameDataset
from train.errors import DatasetError


def read_net_metadata(path: str | Path) -> dict[str, Any]:
    """Timesteps, input shape, classes and dataset recorded in an exported file."""
    path = Path(path)
    if not path.exists():
        raise RuntimeConfigError(f"{path}: network file not found")
    try:
        with h5py.File(path, "r") as h:
            if "layer" not in h:
                raise RuntimeConfigError(f"{path}: not a NetX network (no 'layer' group)")
            return {k: json.loads(v) for k, v in h.attrs.items()}
    except OSError as e:
        raise RuntimeConfigError(f"{path}: not a readable HDF5 file ({e})") from None


def run_dataset(
    net_path: str | Path,
    dataset: str,
    split: str = "test",
    samples: int = 16,
    backend: str = "sim",
    cache_dir: str | None = ".cache/tensors",
) -> dict[str, Any]:
    """Run ``samples`` samples of ``dataset/split`` through ``net_path``; return the report dict."""
    meta = read_net_metadata(net_path)
    if "timesteps" not in meta or "input_shape" not in meta:
        raise RuntimeConfigError(f"{net_path}: lacks timesteps/input_shape metadata (export it with export/to_netx.py)")
    options = meta.get("dataset_options", {}) if meta.get("dataset") == dataset else {}
    try:
        data = FrameDataset(
            dataset, split, size=meta["input_shape"][-1], timesteps=meta["timesteps"],
            options=options, cache_dir=cache_dir, limit=samples,
        )
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{dataset}/{split}: {e}") from None
    t0 = time.perf_counter()
    layers = run_layers(net_path, data.spikes, backend=backend)
    wall = time.perf_counter() - t0
    info = {"backend": backend, "net": str(net_path), "dataset": dataset, "split": split}
    return build_report(layers, data.labels, info, wall)
