"""The tests' one NetX writer: tiny HDF5 files in the layout SLAYER's export produces, and a numpy reference.

Layers are given as dicts (:func:`conv`, :func:`dense`) or as :class:`LayerSpec`; :func:`write_net`
writes either. The reference is written from the documents, not from Lava's code:
docs/netx-format.md (file layout and the per-timestep gain) and the timeline of
lava_runtime/graph.py (samples back to back, one step of synaptic delay per layer, layer k reset
when the first step of a sample reaches it), with Loihi's CUBA arithmetic as docs/design.md states
it (12-bit decays rounding toward zero, states scaled by 2**6, ``v > vth`` fires, ``v`` back to 0
after a spike).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from lava.lib.dl import slayer

from chipnet.netwriter import write_netx


@dataclass
class LayerSpec:
    """One conv (``kernel`` > 0) or dense layer of a test network, weights as the file stores them."""

    weight: np.ndarray  # conv [Cout, Cin, k, k], dense [out, in]
    stride: int = 1
    padding: int = 0
    i_decay: int = 1024
    v_decay: int = 128
    vth: int = 40
    gain_mant: np.ndarray | None = None  # [T, C]
    gain_exp: int = 0
    shape: tuple[int, ...] = field(default=())  # output [C, H, W] or [out], filled by write_net

    @property
    def conv(self) -> bool:
        return self.weight.ndim == 4

    def as_dict(self) -> dict[str, Any]:
        """The :func:`conv`/:func:`dense` form of this layer."""
        neuron = dict(vth=self.vth, i_decay=self.i_decay, v_decay=self.v_decay)
        gain = None if self.gain_mant is None else (self.gain_mant, self.gain_exp)
        if not self.conv:
            return dict(type="dense", weight=self.weight, neuron=neuron, bias=None, gain=gain)
        return dict(
            type="conv",
            weight=self.weight,
            stride=(self.stride,) * 2,
            padding=(self.padding,) * 2,
            dilation=(1, 1),
            groups=1,
            neuron=neuron,
            bias=None,
            gain=gain,
        )


def conv(
    cin: int,
    cout: int,
    kernel: tuple[int, int],
    rng: np.random.Generator,
    *,
    stride=(1, 1),
    padding=(0, 0),
    dilation=(1, 1),
    groups: int = 1,
    weights=(-64, 96),
    vth: int = 40,
    i_decay: int = 1024,
    v_decay: int = 123,
    bias: np.ndarray | None = None,
    gain: tuple[np.ndarray, int] | None = None,
) -> dict[str, Any]:
    """A conv layer spec with random even integer weights in ``weights`` (SLAYER's 2-step grid)."""
    w = 2 * rng.integers(weights[0] // 2, weights[1] // 2 + 1, size=(cout, cin // groups, *kernel))
    return dict(
        type="conv",
        weight=w.astype(np.float32),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        neuron=dict(vth=vth, i_decay=i_decay, v_decay=v_decay),
        bias=bias,
        gain=gain,
    )


def dense(
    n_in: int,
    n_out: int,
    rng: np.random.Generator,
    *,
    weights=(-64, 96),
    vth: int = 40,
    i_decay: int = 1024,
    v_decay: int = 123,
    bias: np.ndarray | None = None,
    gain: tuple[np.ndarray, int] | None = None,
) -> dict[str, Any]:
    """A dense layer spec with random even integer weights."""
    w = 2 * rng.integers(weights[0] // 2, weights[1] // 2 + 1, size=(n_out, n_in))
    return dict(
        type="dense",
        weight=w.astype(np.float32),
        neuron=dict(vth=vth, i_decay=i_decay, v_decay=v_decay),
        bias=bias,
        gain=gain,
    )


def _out_hw(size: tuple[int, int], spec: dict[str, Any]) -> tuple[int, int]:
    kh, kw = spec["weight"].shape[2:]
    return tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, p, d, k, st in zip(size, spec["padding"], spec["dilation"], (kh, kw), spec["stride"])
    )


def write_net(
    path: Path,
    input_shape: tuple[int, int, int],
    specs: list[dict[str, Any] | LayerSpec],
    timesteps: int,
    metadata: dict[str, Any] | None = None,
    classes: int | None = None,
) -> Path:
    """Write ``specs`` (from :func:`conv`/:func:`dense`, or :class:`LayerSpec`; a flatten goes in before the first dense).

    A :class:`LayerSpec` gets its output ``shape`` filled in; a network of them also gets the
    ``classes`` and ``dataset`` attributes the runtime's reports use.
    """
    layer_specs = list(specs) if specs and all(isinstance(spec, LayerSpec) for spec in specs) else []
    if layer_specs:
        metadata = {
            "classes": [f"c{i}" for i in range(classes or specs[-1].weight.shape[0])],
            "dataset": "synthgesture",
            **(metadata or {}),
        }
    specs = [spec.as_dict() if isinstance(spec, LayerSpec) else spec for spec in specs]
    with h5py.File(path, "w") as h:
        meta = {"timesteps": timesteps, "input_shape": list(input_shape), **(metadata or {})}
        for key, value in meta.items():
            h.attrs[key] = json.dumps(value)
        layers = h.create_group("layer")
        g = layers.create_group("0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g.create_dataset("shape", data=np.array(input_shape))
        shape: tuple[int, ...] = tuple(input_shape)
        shapes: list[tuple[int, ...]] = []
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
            shapes.append(shape)
    for spec, shape in zip(layer_specs, shapes):
        spec.shape = tuple(shape)
    return path


def slayer_net(path, t: int) -> None:
    """A network of lava-dl SLAYER blocks with random weights, exported as the pipeline does."""
    torch.manual_seed(3)

    def conv_block(neuron: dict[str, float], cin: int, cout: int, stride: int) -> torch.nn.Module:
        return slayer.block.cuba.Conv(neuron, cin, cout, 3, stride=stride, padding=1, weight_scale=4, delay_shift=False)

    blocks = torch.nn.ModuleList(
        [
            conv_block({"threshold": 0.6, "current_decay": 0.3, "voltage_decay": 0.05}, 2, 6, stride=2),
            conv_block({"threshold": 1.1, "current_decay": 0.1, "voltage_decay": 0.2}, 6, 8, stride=1),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(
                {"threshold": 0.8, "current_decay": 0.5, "voltage_decay": 0.01},
                8 * 6 * 6,
                7,
                weight_scale=4,
                delay_shift=False,
            ),
        ]
    )

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


def synapse(spec: LayerSpec, x: np.ndarray) -> np.ndarray:
    """Weighted input of one step: ``x`` is the previous layer's output, [C, H, W] or flat."""
    if not spec.conv:
        return spec.weight.astype(np.int64) @ x.reshape(-1).astype(np.int64)
    cout, cin, k, _ = spec.weight.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (spec.padding,) * 2, (spec.padding,) * 2))
    _, hh, ww = spec.shape
    out = np.zeros((cout, hh, ww), dtype=np.int64)
    for i in range(hh):
        for j in range(ww):
            patch = xp[:, i * spec.stride : i * spec.stride + k, j * spec.stride : j * spec.stride + k]
            out[:, i, j] = np.tensordot(spec.weight.astype(np.int64), patch, axes=([1, 2, 3], [0, 1, 2]))
    return out


def _trunc_scale(x: np.ndarray, num: int | np.ndarray, shift: int) -> np.ndarray:
    """``x * num / 2**shift`` rounded toward zero, in integers."""
    p = x * num
    return np.sign(p) * (np.abs(p) >> shift)


def reference(layers: list[LayerSpec], x: np.ndarray) -> list[np.ndarray]:
    """Every layer's spikes ``[N, C, H, W, T]`` (or ``[N, out, T]``) per sample, from the streamed timeline.

    The stream is the samples back to back and then ``L`` empty steps; layer ``k``'s record of
    sample ``i`` is the ``T`` steps from its reset (window steps ``i·T + k + 1 .. i·T + T + k``).
    """
    n, t = x.shape[0], x.shape[-1]
    steps = n * t + len(layers)
    frames = [x[(tau - 1) // t, ..., (tau - 1) % t] for tau in range(1, n * t + 1)]
    prev = frames + [np.zeros_like(frames[0])] * len(layers)  # what arrives at step tau
    outs = []
    for k, spec in enumerate(layers):
        u = np.zeros(spec.shape, dtype=np.int64)
        v = np.zeros(spec.shape, dtype=np.int64)
        out = np.zeros((steps, *spec.shape), dtype=np.uint8)
        for tau in range(1, steps + 1):
            # One step of synaptic delay: the input of step tau was sent at tau - 1.
            a = synapse(spec, prev[tau - 2]) if tau > 1 else np.zeros(spec.shape, dtype=np.int64)
            if tau % t == (k + 2) % t:  # the first input step of a sample reaches layer k at window step k + 1
                u[...] = 0
                v[...] = 0
            cur = a << 6
            if spec.gain_mant is not None:  # the sample's step since the reset
                g = spec.gain_mant[(tau - 2 - k) % t].astype(np.int64)
                g = g.reshape(-1, *([1] * (cur.ndim - 1)))  # channel is the first axis here
                cur = _trunc_scale(cur, g, spec.gain_exp)
            u = _trunc_scale(u, 4096 - spec.i_decay, 12) + cur
            v = _trunc_scale(v, 4096 - spec.v_decay, 12) + u
            assert np.abs(u).max(initial=0) < 2**23 and np.abs(v).max(initial=0) < 2**23, "reference left 24 bits"
            fired = v > (spec.vth << 6)
            v[fired] = 0
            out[tau - 1] = fired
        prev = list(out)
        windows = out[k + 1 : k + 1 + n * t].reshape(n, t, *spec.shape)
        outs.append(np.moveaxis(windows, 1, -1))
    return outs


def to_lava_order(spikes: np.ndarray) -> np.ndarray:
    """Reference layout ``[N, C, H, W, T]`` / ``[N, out, T]`` → the runtime's ``[N, W, H, C, T]`` / ``[N, out, T]``."""
    return spikes.transpose(0, 3, 2, 1, 4) if spikes.ndim == 5 else spikes
