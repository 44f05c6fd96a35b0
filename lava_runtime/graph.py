"""The Lava process graph of an exported file: source → NetX network → per-layer monitors.

Samples are streamed back to back, ``T`` steps each. NetX's ``reset_interval`` resets each
layer's neurons when the first step of a new sample reaches it (layer k at step ``1 + k`` of
the sample window, one step of synaptic delay per layer), so no padding steps are needed and
nothing of one sample leaks into the next.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lava.lib.dl import netx
from lava.magma.core.process.process import AbstractProcess
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import RingBuffer as SourceBuffer

from lava_runtime.processes.counter import SpikeCounter


@dataclass
class Graph:
    """A runnable network, its input source and one monitor per layer.

    A monitor is a ``RingBuffer`` sink (every spike) where ``recorded[i]`` is true, else a
    ``SpikeCounter`` (spikes per step).
    """

    net: netx.hdf5.Network
    source: SourceBuffer
    monitors: list[AbstractProcess]
    recorded: list[bool]
    layer_names: list[str]
    num_steps: int


def to_lava_layout(spikes: np.ndarray) -> np.ndarray:
    """SLAYER ``[N, C, H, W, T]`` samples → one Lava stream ``[W, H, C, N·T]``."""
    n, c, h, w, t = spikes.shape
    return spikes.transpose(3, 2, 1, 0, 4).reshape(w, h, c, n * t)


def build_graph(net_path: str | Path, spikes: np.ndarray, record: str = "output") -> Graph:
    """Lava processes that stream ``spikes`` ``[N, C, H, W, T]`` through the network in ``net_path``.

    ``record`` is ``"output"`` (every spike of the output layer, counts elsewhere) or ``"all"``.
    """
    timesteps = spikes.shape[-1]
    num_steps = spikes.shape[0] * timesteps
    net = netx.hdf5.Network(net_config=str(net_path), reset_interval=timesteps, reset_offset=1)
    source = SourceBuffer(data=to_lava_layout(spikes).astype(np.int32))
    source.s_out.connect(net.inp)
    monitors, recorded, names = [], [], []
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        full = record == "all" or i == last
        if full:
            monitor = SinkBuffer(shape=layer.out.shape, buffer=num_steps)
        else:
            monitor = SpikeCounter(shape=layer.out.shape, num_steps=num_steps)
        layer.out.connect(monitor.a_in)
        monitors.append(monitor)
        recorded.append(full)
        names.append(f"{i}:{layer.block.lower()}")
    return Graph(net, source, monitors, recorded, names, num_steps)
