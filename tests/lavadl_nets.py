"""Tiny networks written by lava-dl's own writer (SLAYER blocks' ``export_hdf5``), not our exporter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from lava.lib.dl import slayer

CUBA = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03, "requires_grad": False}
SDNN = {"threshold": 0.1, "activation": torch.nn.functional.relu, "requires_grad": False}


def _export(
    blocks: list[torch.nn.Module], x: torch.Tensor, path: Path, simulation: bool = True, prepare: Any = None
) -> Path:
    """Run ``x`` once (SLAYER sizes its neurons on first use), then write the blocks as lava-dl does.

    ``prepare`` (a callable) runs between the two, e.g. to set parameters that the first run sized.
    """
    with torch.no_grad():
        for block in blocks:
            x = block(x)
    if prepare is not None:
        prepare()
    with h5py.File(path, "w") as h:
        if simulation:  # lava-dl's examples write a simulation group beside the layers
            sim = h.create_group("simulation")
            sim["Ts"] = 1.0
            sim["tSample"] = int(x.shape[-1])
        layers = h.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layers.create_group(f"{i}"))
    return path


def cuba_conv(path: Path, seed: int = 0, five_d: bool = True) -> Path:
    """cuba.Input (weight/bias transform) → Conv → Flatten → Dense (per-neuron decays)."""
    torch.manual_seed(seed)
    per_channel = {**CUBA, "shared_param": False}
    blocks = [
        slayer.block.cuba.Input(CUBA, weight=2.0, bias=0.5),
        slayer.block.cuba.Conv(CUBA, 2, 3, 3, weight_scale=3),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(per_channel, 3 * 4 * 4, 4, weight_scale=3),
    ]
    _export(blocks, torch.zeros(1, 2, 6, 6, 4), path)
    with h5py.File(path, "a") as h:
        if five_d:  # the layout of lava-dl's shipped .net files: a trailing kernel axis of 1
            w = h["layer/1/weight"][()]
            del h["layer/1/weight"]
            h["layer/1/weight"] = w[..., None]
        del h["layer/3/type"]
        h["layer/3/type"] = "dense"  # a scalar type string, as some writers store it
    return path


def cuba_dense(path: Path, seed: int = 1) -> Path:
    """Dense-only, no input layer: NetX sizes the input from the first weight."""
    torch.manual_seed(seed)
    blocks = [slayer.block.cuba.Dense(CUBA, 10, 6, weight_scale=4), slayer.block.cuba.Dense(CUBA, 6, 3, weight_scale=4)]
    return _export(blocks, torch.zeros(1, 10, 4), path, simulation=False)


def _sdnn_bias(blocks: list[torch.nn.Module], seed: int) -> None:
    """Give the mean-only batch norms (whose mean lava-dl exports as the neurons' bias) random means."""
    gen = torch.Generator().manual_seed(seed)
    for block in blocks:
        norm = getattr(getattr(block, "neuron", None), "norm", None)
        if norm is not None:
            norm.running_mean = torch.randn(norm.running_mean.shape, generator=gen) * 0.2


def sdnn(path: Path, seed: int = 2) -> Path:
    """sigma_delta.Input → Conv (bias) → Conv → Flatten → Dense (bias) → Output (sigma output), PilotNet-style."""
    torch.manual_seed(seed)
    normed = {**SDNN, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}
    blocks = [
        slayer.block.sigma_delta.Input(SDNN),
        slayer.block.sigma_delta.Conv(normed, 2, 4, 3, stride=2, padding=1, weight_scale=2),
        slayer.block.sigma_delta.Conv(SDNN, 4, 3, 3, weight_scale=2),
        slayer.block.sigma_delta.Flatten(),
        slayer.block.sigma_delta.Dense(normed, 3 * 2 * 2, 5, weight_scale=2),
        slayer.block.sigma_delta.Output(SDNN, 5, 2, weight_scale=2),
    ]
    return _export(blocks, torch.zeros(1, 2, 8, 8, 4), path, prepare=lambda: _sdnn_bias(blocks, seed))


def sdnn_dense(path: Path, seed: int = 3) -> Path:
    """sigma_delta.Input [F] → Dense (bias) → Output: the dense-only sigma-delta net."""
    torch.manual_seed(seed)
    normed = {**SDNN, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}
    blocks = [
        slayer.block.sigma_delta.Input(SDNN),
        slayer.block.sigma_delta.Dense(normed, 8, 6, weight_scale=2),
        slayer.block.sigma_delta.Output(SDNN, 6, 3, weight_scale=2),
    ]
    return _export(blocks, torch.zeros(1, 8, 4), path, simulation=False, prepare=lambda: _sdnn_bias(blocks, seed))


def binary_input(shape: tuple[int, ...], samples: int, timesteps: int, seed: int = 0, p: float = 0.4) -> np.ndarray:
    """Random 0/1 spikes ``[N, *shape, T]``."""
    rng = np.random.default_rng(seed)
    return (rng.random((samples, *shape, timesteps)) < p).astype(np.int32)


def graded_input(
    shape: tuple[int, ...], samples: int, timesteps: int, seed: int = 0, high: int = 160, p: float = 0.5
) -> np.ndarray:
    """Random integer payloads ``[N, *shape, T]`` in ``[0, high)``, zero with probability ``1 - p``."""
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, high, (samples, *shape, timesteps)) * (rng.random((samples, *shape, timesteps)) < p)
    ).astype(np.int32)
