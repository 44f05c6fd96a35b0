"""Tiny NetX HDF5 files written directly with h5py, in the layout SLAYER's export produces."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from lava.lib.dl import slayer

from export.netx import write_netx


def conv(cin: int, cout: int, kernel: tuple[int, int], rng: np.random.Generator, *, stride=(1, 1), padding=(0, 0),
         dilation=(1, 1), groups: int = 1, weights=(-64, 96), vth: int = 40, i_decay: int = 1024, v_decay: int = 123,
         bias: np.ndarray | None = None, gain: tuple[np.ndarray, int] | None = None) -> dict[str, Any]:
    """A conv layer spec with random even integer weights in ``weights`` (SLAYER's 2-step grid)."""
    w = 2 * rng.integers(weights[0] // 2, weights[1] // 2 + 1, size=(cout, cin // groups, *kernel))
    return dict(type="conv", weight=w.astype(np.float32), stride=stride, padding=padding, dilation=dilation,
                groups=groups, neuron=dict(vth=vth, i_decay=i_decay, v_decay=v_decay), bias=bias, gain=gain)


def dense(n_in: int, n_out: int, rng: np.random.Generator, *, weights=(-64, 96), vth: int = 40, i_decay: int = 1024,
          v_decay: int = 123, bias: np.ndarray | None = None, gain: tuple[np.ndarray, int] | None = None) -> dict[str, Any]:
    """A dense layer spec with random even integer weights."""
    w = 2 * rng.integers(weights[0] // 2, weights[1] // 2 + 1, size=(n_out, n_in))
    return dict(type="dense", weight=w.astype(np.float32), neuron=dict(vth=vth, i_decay=i_decay, v_decay=v_decay),
                bias=bias, gain=gain)


def _out_hw(size: tuple[int, int], spec: dict[str, Any]) -> tuple[int, int]:
    kh, kw = spec["weight"].shape[2:]
    return tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, p, d, k, st in zip(size, spec["padding"], spec["dilation"], (kh, kw), spec["stride"])
    )


def write_net(path: Path, input_shape: tuple[int, int, int], specs: list[dict[str, Any]], timesteps: int,
              metadata: dict[str, Any] | None = None) -> Path:
    """Write ``specs`` (from :func:`conv`/:func:`dense`; a flatten goes in before the first dense)."""
    with h5py.File(path, "w") as h:
        meta = {"timesteps": timesteps, "input_shape": list(input_shape), **(metadata or {})}
        for key, value in meta.items():
            h.attrs[key] = json.dumps(value)
        layers = h.create_group("layer")
        g = layers.create_group("0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g.create_dataset("shape", data=np.array(input_shape))
        shape: tuple[int, ...] = tuple(input_shape)
        i = 1
        for spec in specs:
            if spec["type"] == "dense" and len(shape) == 3:
                g = layers.create_group(str(i))
                g.create_dataset("type", (1,), "S10", [b"flatten"])
                g.create_dataset("shape", data=np.array([int(np.prod(shape)), 1, 1]))
                i += 1
            g = layers.create_group(str(i))
            g.create_dataset("type", (1,), "S10", [spec["type"].encode()])
            g.create_dataset("weight", data=spec["weight"])
            if spec["type"] == "conv":
                shape = (spec["weight"].shape[0], *_out_hw(shape[1:], spec))
                for key in ("stride", "padding", "dilation"):
                    g.create_dataset(key, data=np.array(spec[key]))
                g.create_dataset("groups", data=spec["groups"])
            else:
                shape = (spec["weight"].shape[0],)
            g.create_dataset("shape", data=np.array(shape))
            n = g.create_group("neuron")
            n.create_dataset("type", data="CUBA")
            n.create_dataset("iDecay", data=spec["neuron"]["i_decay"])
            n.create_dataset("vDecay", data=spec["neuron"]["v_decay"])
            n.create_dataset("vThMant", data=spec["neuron"]["vth"])
            n.create_dataset("refDelay", data=1)
            n.create_dataset("gradedSpike", data=False)
            if spec.get("bias") is not None:
                g.create_dataset("bias", data=np.asarray(spec["bias"], dtype=np.float32))
            if spec.get("gain") is not None:
                mant, exp = spec["gain"]
                g.create_dataset("gain_mant", data=np.asarray(mant, dtype=np.int32))
                g.create_dataset("gain_exp", data=exp)
            i += 1
    return path


def slayer_net(path, t: int) -> None:
    """A network of lava-dl SLAYER blocks with random weights, exported as the pipeline does."""
    torch.manual_seed(3)
    blocks = torch.nn.ModuleList([
        slayer.block.cuba.Conv({"threshold": 0.6, "current_decay": 0.3, "voltage_decay": 0.05}, 2, 6, 3, stride=2,
                               padding=1, weight_scale=4, delay_shift=False),
        slayer.block.cuba.Conv({"threshold": 1.1, "current_decay": 0.1, "voltage_decay": 0.2}, 6, 8, 3, stride=1,
                               padding=1, weight_scale=4, delay_shift=False),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense({"threshold": 0.8, "current_decay": 0.5, "voltage_decay": 0.01}, 8 * 6 * 6, 7,
                                weight_scale=4, delay_shift=False),
    ])

    class Net(torch.nn.Module):
        def forward(self, x):
            for b in blocks:
                x = b(x)
            return x

        def export_hdf5(self, h):
            self(torch.zeros(1, 2, 12, 12, 2))  # SLAYER sizes its neurons on the first forward
            layers = h.create_group("layer")
            layers.create_group("0").create_dataset("type", (1,), "S10", [b"input"])
            layers["0"].create_dataset("shape", data=np.array([2, 12, 12]))
            for i, b in enumerate(blocks, start=1):
                b.export_hdf5(layers.create_group(str(i)))

    write_netx(Net(), path, {"timesteps": t, "input_shape": [2, 12, 12]})
