"""Run an exported network on dataset samples and build its report (what ``run`` does)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from lava_runtime.backends import EMULATED
from lava_runtime.emu import run_layers as emulate
from lava_runtime.energy import load_energy_model
from lava_runtime.errors import RuntimeConfigError
from lava_runtime.netfile import read_net
from lava_runtime.report import build_report
from lava_runtime.records import Agreement, LayerRecord, compare_records, output_agreement
from lava_runtime.simulate import run_layers
from train.data import FrameDataset
from train.errors import DatasetError


def read_net_metadata(path: str | Path) -> dict[str, Any]:
    """Timesteps, input shape, classes and dataset recorded in an exported file (validated whole first)."""
    return read_net(path).metadata


def load_samples(net_path: str | Path, dataset: str, split: str, samples: int,
                 cache_dir: str | None = ".cache/tensors", data_root: str | Path | None = None) -> FrameDataset:
    """``samples`` samples of ``dataset/split`` binned to the exported network's input size and T."""
    meta = read_net_metadata(net_path)
    if "timesteps" not in meta or "input_shape" not in meta:
        raise RuntimeConfigError(f"{net_path}: lacks timesteps/input_shape metadata (export it with export/to_netx.py)")
    options = meta.get("dataset_options", {}) if meta.get("dataset") == dataset else {}
    try:
        return FrameDataset(
            dataset, split, size=meta["input_shape"][-1], timesteps=meta["timesteps"],
            options=options, cache_dir=cache_dir, limit=samples, data_root=data_root,
        )
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{dataset}/{split}: {e}") from None


def backend_layers(net_path: str | Path, spikes: np.ndarray, backend: str, record: str = "output",
                   progress: bool = False) -> list[LayerRecord]:
    """Every layer's record from a Lava backend, or from the emulator for ``emu``/``emu-float``."""
    if backend in EMULATED:
        return emulate(net_path, spikes, record=record, arithmetic=EMULATED[backend])
    return run_layers(net_path, spikes, backend=backend, record=record, progress=progress)


def validate_dataset(net_path: str | Path, dataset: str, split: str = "test", samples: int = 16,
                     cache_dir: str | None = ".cache/tensors") -> Agreement:
    """Run the same samples on ``sim`` and ``emu`` recording every layer, and compare the spikes."""
    data = load_samples(net_path, dataset, split, samples, cache_dir)
    sim = backend_layers(net_path, data.spikes, "sim", record="all")
    return compare_records(sim, backend_layers(net_path, data.spikes, "emu", record="all"))


def run_dataset(
    net_path: str | Path,
    dataset: str,
    split: str = "test",
    samples: int = 16,
    backend: str = "sim",
    cache_dir: str | None = ".cache/tensors",
    energy_model: str | Path | None = None,
    progress: bool = False,
    data_root: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``samples`` samples of ``dataset/split`` through ``net_path``; return the report dict.

    ``energy_model`` is a YAML of per-operation energies (the packaged Loihi model when None);
    it is read before anything runs so that a bad file fails fast.
    """
    energy = load_energy_model(energy_model)
    data = load_samples(net_path, dataset, split, samples, cache_dir, data_root)
    t0 = time.perf_counter()
    layers = backend_layers(net_path, data.spikes, backend, progress=progress)
    wall = time.perf_counter() - t0
    info = {"backend": backend, "net": str(net_path), "dataset": dataset, "split": split}
    agreement = None if backend == "emu" else output_agreement(layers, emulate(net_path, data.spikes))
    return build_report(layers, data.labels, info, wall, energy=energy, agreement=agreement)
