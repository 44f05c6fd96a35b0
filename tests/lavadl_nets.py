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


def _loihi_neuron(group: h5py.Group, i_decay: int = 4096, v_decay: int = 1024, vth: int = 25) -> None:
    """The ``neuron`` group of lava-dl's older Loihi exports (``type = LOIHI`` with its extra keys)."""
    n = group.create_group("neuron")
    n["type"] = "LOIHI"  # a variable-length string, as in those files
    for key, value in (("iDecay", i_decay), ("vDecay", v_decay), ("vThMant", vth), ("refDelay", 1), ("wgtExp", 0)):
        n[key] = np.int64(value)
    n["theta"] = np.int64(vth << 6)
    n["scaleRho"] = 10.0
    n["tauRho"] = 0.5


def _loihi_conv(group: h5py.Group, weight: np.ndarray, bias: np.ndarray, shape: tuple[int, int, int]) -> None:
    """A stride-2, unpadded conv layer with a 5-D weight ``[Cout, Cin, kh, kw, 1]`` and a per-channel bias."""
    group.create_dataset("type", (1,), "S10", [b"conv"])
    group["weight"] = weight.astype(np.float32)[..., None]
    group["bias"] = bias.astype(np.float32)
    group["shape"] = np.array(shape)
    group["inChannels"] = np.int64(weight.shape[1])
    group["outChannels"] = np.int64(weight.shape[0])
    group["kernelSize"] = np.array(weight.shape[2:])
    group["stride"] = np.array([2, 2])
    group["padding"] = np.array([0, 0])
    group["dilation"] = np.array([1, 1])
    group["groups"] = np.int64(1)
    _loihi_neuron(group)


def loihi_tiny(path: Path, seed: int = 0) -> Path:
    """A small file with the features of lava-dl's ``tests/lava/lib/dl/netx/tiny.net`` (written here, not copied).

    An input layer with ``LOIHI`` neurons (``iDecay = 4096``, ``vDecay = 1024``, ``vThMant = 25``) and
    a one-element input transform ``weight``/``bias`` (36/34), then two stride-2 convs with 5-D
    integer weights and per-channel biases, some above the threshold so that they fire before any
    input reaches them; a ``simulation`` group. Input ``[2, 13, 13]`` → ``[6, 5, 5]`` → ``[8, 1, 1]``.
    """
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h:
        sim = h.create_group("simulation")
        sim["Ts"] = np.int64(1)
        sim["tSample"] = np.int64(64)
        layers = h.create_group("layer")
        g = layers.create_group("0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g["shape"] = np.array([2, 13, 13])
        g["weight"] = np.array([36.0], np.float32)
        g["bias"] = np.array([34.0], np.float32)
        _loihi_neuron(g)
        bias1 = 2 * rng.integers(-21, 32, 6)
        bias1[:2] = (62, 40)  # above vThMant = 25: these channels fire on their bias alone
        _loihi_conv(layers.create_group("1"), rng.integers(-10, 11, (6, 2, 5, 5)), bias1, (6, 5, 5))
        bias2 = 2 * rng.integers(-7, 19, 8)
        bias2[0] = 36
        _loihi_conv(layers.create_group("2"), rng.integers(-8, 8, (8, 6, 5, 5)), bias2, (8, 1, 1))
    return path


def payload_input(shape: tuple[int, ...], samples: int, timesteps: int, seed: int = 0) -> np.ndarray:
    """Input-neuron payloads ``[N, *shape, T]``: 256 (tiny.net's test input) with probability 0.3, else
    a graded value in ``[-64, 64)`` with probability 0.3 (negative ones exercise rounding toward zero), else 0."""
    rng = np.random.default_rng(seed)
    size = (samples, *shape, timesteps)
    draw = rng.random(size)
    graded = rng.integers(-64, 64, size)
    return np.where(draw < 0.3, 256, np.where(draw < 0.6, graded, 0)).astype(np.int32)
