"""Run an exported network on dataset samples and build its report (what ``run`` does)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from chipnet.errors import DatasetError, RuntimeConfigError
from chipnet.netfile import read_net
from chipnet.netmodel import NetFile
from lava_runtime.backends import REFERENCE, get_backend
from lava_runtime.emu import emulate
from lava_runtime.energy import load_energy_model
from lava_runtime.records import Agreement, LayerRecord, compare_records, output_agreement, to_lava_order
from lava_runtime.report import build_report
from train.data import FrameDataset


def as_netfile(net: str | Path | NetFile) -> NetFile:
    """``net`` read (once) into a :class:`NetFile`; a NetFile is passed through."""
    return net if isinstance(net, NetFile) else read_net(net)


def read_net_metadata(path: str | Path | NetFile) -> dict[str, Any]:
    """Timesteps, input shape, classes and dataset recorded in an exported file (validated whole first)."""
    return as_netfile(path).metadata


def load_samples(
    net: str | Path | NetFile,
    dataset: str,
    split: str,
    samples: int,
    cache_dir: str | None = ".cache/tensors",
    data_root: str | Path | None = None,
) -> FrameDataset:
    """``samples`` samples of ``dataset/split`` binned to the exported network's input size and T."""
    net = as_netfile(net)
    net_path = net.path
    meta = net.metadata
    if "timesteps" not in meta or "input_shape" not in meta:
        raise RuntimeConfigError(f"{net_path}: lacks timesteps/input_shape metadata (export it with export/to_netx.py)")
    options = meta.get("dataset_options", {}) if meta.get("dataset") == dataset else {}
    try:
        return FrameDataset(
            dataset,
            split,
            size=meta["input_shape"][-1],
            timesteps=meta["timesteps"],
            options=options,
            cache_dir=cache_dir,
            limit=samples,
            data_root=data_root,
            binning=meta.get("binning", "time"),
            encoding=meta.get("encoding", "spikes"),
        )
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{dataset}/{split}: {e}") from None


def prepare_backend(backend: str) -> None:
    """Import Lava's runtime now if ``backend`` needs it, before any dataset is binned (see Backend.prepare)."""
    get_backend(backend).prepare()


def backend_layers(
    net: str | Path | NetFile, spikes: np.ndarray, backend: str, record: str = "output", progress: bool = False
) -> list[LayerRecord]:
    """Every layer's record from a Lava backend, or from the emulator for ``emu``/``emu-float``."""
    return get_backend(backend).run(net, spikes, record=record, progress=progress)


def validate_dataset(
    net: str | Path | NetFile,
    dataset: str,
    split: str = "test",
    samples: int = 16,
    cache_dir: str | None = ".cache/tensors",
    data_root: str | Path | None = None,
) -> Agreement:
    """Run the same samples on ``sim`` and ``emu`` recording every layer, and compare the spikes."""
    prepare_backend("sim")
    net = as_netfile(net)
    data = load_samples(net, dataset, split, samples, cache_dir, data_root=data_root)
    sim = backend_layers(net, data.spikes, "sim", record="all")
    return compare_records(sim, backend_layers(net, data.spikes, "emu", record="all"))


def load_arrays(
    net: str | Path | NetFile, input_path: str | Path, labels_path: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``--input X.npy`` (``[N, C, H, W, T]`` or ``[N, F, T]`` integers) and ``--labels Y.npy`` (int ``[N]``), checked."""
    net = as_netfile(net)
    net_path = net.path
    x = _load_npy(input_path, "input")
    if x.dtype.kind not in "iub" and not (x.dtype.kind == "f" and np.all(x == np.round(x))):
        raise RuntimeConfigError(
            f"{input_path}: input must hold integers (spikes or graded payloads), got dtype {x.dtype}"
        )
    want = tuple(net.input_shape)
    if x.ndim != len(want) + 2 or tuple(x.shape[1:-1]) != want or x.shape[0] < 1 or x.shape[-1] < 1:
        order = "[N, C, H, W, T]" if len(want) == 3 else "[N, F, T]"
        raise RuntimeConfigError(
            f"{input_path}: input shape {list(x.shape)} must be {order} with "
            f"{'CHW' if len(want) == 3 else 'F'} = {list(want)} (network {net_path})"
        )
    if np.abs(x).max(initial=0) >= 1 << 24:
        raise RuntimeConfigError(f"{input_path}: input values must fit Loihi's 24-bit payloads")
    x = x.astype(np.int32)
    labels = None
    if labels_path is not None:
        y = _load_npy(labels_path, "labels")
        if y.dtype.kind not in "iu" or y.shape != (x.shape[0],):
            raise RuntimeConfigError(
                f"{labels_path}: labels must be integers of shape [{x.shape[0]}], got {y.dtype} {list(y.shape)}"
            )
        labels = y.astype(np.int64)
    return x, labels


def _load_npy(path: str | Path, what: str) -> np.ndarray:
    """A ``.npy`` array (no pickles), or a one-line error naming the file."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise RuntimeConfigError(f"{path}: {what} file not found") from None
    except (OSError, ValueError, EOFError) as e:
        raise RuntimeConfigError(f"{path}: not a readable .npy {what} array ({e})") from None


def save_output_spikes(layers: list[LayerRecord], path: str | Path) -> str:
    """The output layer ``[N, *output_shape, T]`` in the file's ``[C, H, W]``/``[F]`` order, local time.

    A voltage readout saves its integrators' voltage after each step (Loihi's integer ``v``, 2**12 ×
    the float voltage) instead of its (absent) spikes. Returns what the file holds.
    """
    out = layers[-1].voltage if layers[-1].voltage is not None else layers[-1].spikes
    np.save(path, to_lava_order(out))
    return (
        "output voltage" if layers[-1].voltage is not None else "output spikes"
    )  # Lava's (W, H, C) back to (C, H, W): reversing is its own inverse


def run_arrays(
    net: str | Path | NetFile,
    spikes: np.ndarray,
    labels: np.ndarray | None = None,
    backend: str = "sim",
    energy_model: str | Path | None = None,
    progress: bool = False,
    info: dict[str, Any] | None = None,
    spikes_out: str | Path | None = None,
) -> dict[str, Any]:
    """Run input arrays ``[N, C, H, W, T]``/``[N, F, T]`` through ``net``; the report (accuracy with labels)."""
    energy = load_energy_model(energy_model)
    name = net.path if isinstance(net, NetFile) else str(net)
    net = as_netfile(net)
    t0 = time.perf_counter()
    layers = backend_layers(net, spikes, backend, progress=progress)
    wall = time.perf_counter() - t0
    info = {"backend": backend, "net": name, **(info or {})}
    # emulate's defaults are REFERENCE's arithmetic: the reference is not compared with itself
    agreement = None if get_backend(backend) is REFERENCE else output_agreement(layers, emulate(net, spikes))
    report = build_report(layers, labels, info, wall, energy=energy, agreement=agreement)
    if spikes_out is not None:
        report["output_file"] = {"path": str(spikes_out), "holds": save_output_spikes(layers, spikes_out)}
    return report


def validate_arrays(net: str | Path | NetFile, spikes: np.ndarray) -> Agreement:
    """Run input arrays on ``sim`` and ``emu`` recording every layer, and compare the spikes."""
    net = as_netfile(net)
    sim = backend_layers(net, spikes, "sim", record="all")
    return compare_records(sim, backend_layers(net, spikes, "emu", record="all"))


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
    spikes_out: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``samples`` samples of ``dataset/split`` through ``net_path``; return the report dict.

    ``energy_model`` is a YAML of per-operation energies (the packaged Loihi model when None);
    it is read before anything runs so that a bad file fails fast.
    """
    load_energy_model(energy_model)  # a bad energy file fails before the dataset is read
    prepare_backend(backend)
    net = read_net(net_path)  # read once: every backend and the agreement check take this NetFile
    data = load_samples(net, dataset, split, samples, cache_dir, data_root)
    return run_arrays(
        net,
        data.spikes,
        data.labels,
        backend,
        energy_model,
        progress,
        {"net": str(net_path), "dataset": dataset, "split": split},
        spikes_out,
    )
