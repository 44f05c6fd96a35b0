"""Test helpers for the runtime: tiny NetX files written directly, and a numpy reference of them.

The reference is written from the documents, not from Lava's code: docs/netx-format.md (file
layout and the per-timestep gain) and the timeline of lava_runtime/graph.py (samples back to
back, one step of synaptic delay per layer, layer k reset when the first step of a sample
reaches it), with Loihi's CUBA arithmetic as docs/design.md states it (12-bit decays rounding
toward zero, states scaled by 2**6, ``v > vth`` fires, ``v`` back to 0 after a spike).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np


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


def write_net(path: Path, input_shape: tuple[int, int, int], layers: list[LayerSpec], timesteps: int,
              classes: int | None = None) -> Path:
    """Write a NetX HDF5 file (input, conv..., flatten, dense...) with our metadata attributes."""
    c, h, w = input_shape
    shape: tuple[int, ...] = input_shape
    with h5py.File(path, "w") as f:
        f.attrs["timesteps"] = json.dumps(timesteps)
        f.attrs["input_shape"] = json.dumps(list(input_shape))
        f.attrs["classes"] = json.dumps([f"c{i}" for i in range(classes or layers[-1].weight.shape[0])])
        f.attrs["dataset"] = json.dumps("synthgesture")
        grp = f.create_group("layer")
        idx = 0

        def new() -> h5py.Group:
            nonlocal idx
            g = grp.create_group(str(idx))
            idx += 1
            return g

        g = new()
        g["type"] = np.array([b"input"])
        g["shape"] = np.array(input_shape)
        flat = False
        for spec in layers:
            if not spec.conv and not flat and len(shape) == 3:
                g = new()
                g["type"] = np.array([b"flatten"])
                g["shape"] = np.array([int(np.prod(shape)), 1, 1])
                flat = True
            g = new()
            if spec.conv:
                cout, _, k, _ = spec.weight.shape
                hh = (shape[1] + 2 * spec.padding - k) // spec.stride + 1
                ww = (shape[2] + 2 * spec.padding - k) // spec.stride + 1
                spec.shape = (cout, hh, ww)
                g["type"] = np.array([b"conv"])
                g["stride"] = np.array([spec.stride, spec.stride])
                g["padding"] = np.array([spec.padding, spec.padding])
                g["dilation"] = np.array([1, 1])
                g["groups"] = 1
            else:
                spec.shape = (spec.weight.shape[0],)
                g["type"] = np.array([b"dense"])
            g["shape"] = np.array(spec.shape)
            g["weight"] = spec.weight.astype(np.float32)
            n = g.create_group("neuron")
            n["type"] = "CUBA"
            n["iDecay"] = spec.i_decay
            n["vDecay"] = spec.v_decay
            n["vThMant"] = spec.vth
            n["refDelay"] = 1
            n["gradedSpike"] = False
            if spec.gain_mant is not None:
                g["gain_mant"] = spec.gain_mant.astype(np.int32)
                g["gain_exp"] = spec.gain_exp
            shape = spec.shape
    return path


def _synapse(spec: LayerSpec, x: np.ndarray) -> np.ndarray:
    """Weighted input of one step: ``x`` is the previous layer's output, [C, H, W] or flat."""
    if not spec.conv:
        return spec.weight.astype(np.int64) @ x.reshape(-1).astype(np.int64)
    cout, cin, k, _ = spec.weight.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (spec.padding,) * 2, (spec.padding,) * 2))
    _, hh, ww = spec.shape
    out = np.zeros((cout, hh, ww), dtype=np.int64)
    for i in range(hh):
        for j in range(ww):
            patch = xp[:, i * spec.stride:i * spec.stride + k, j * spec.stride:j * spec.stride + k]
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
            a = _synapse(spec, prev[tau - 2]) if tau > 1 else np.zeros(spec.shape, dtype=np.int64)
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
        windows = out[k + 1:k + 1 + n * t].reshape(n, t, *spec.shape)
        outs.append(np.moveaxis(windows, 1, -1))
    return outs


def to_lava_order(spikes: np.ndarray) -> np.ndarray:
    """Reference layout ``[N, C, H, W, T]`` / ``[N, out, T]`` → the runtime's ``[N, W, H, C, T]`` / ``[N, out, T]``."""
    return spikes.transpose(0, 3, 2, 1, 4) if spikes.ndim == 5 else spikes
