"""Run a graph on a backend and collect every layer's spikes, aligned to the torch timeline."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lava.magma.core.run_conditions import RunSteps

from lava_runtime.backends import run_config
from lava_runtime.errors import RuntimeConfigError
from lava_runtime.graph import build_graph


@dataclass
class LayerSpikes:
    """One layer's output: ``spikes[n, neurons..., t]`` in Lava's (W, H, C) neuron order.

    Layer ``k`` (0-based) is ``k + 1`` steps behind the input, so the first ``k + 1`` steps of a
    sample's window still carry the previous sample's tail. Those steps are zeroed in ``spikes``
    (SLAYER's ``delay_shift`` model has zeros there too) and their spikes, real activity on the
    chip, are counted in ``tail_spikes``.
    """

    name: str
    spikes: np.ndarray
    tail_spikes: int


def run_spikes(net_path: str | Path, spikes: np.ndarray, backend: str = "sim") -> list[LayerSpikes]:
    """Stream ``spikes`` ``[N, C, H, W, T]`` through the network and return every layer's spikes."""
    cfg = run_config(backend)
    graph = build_graph(net_path, spikes)
    n, t = spikes.shape[0], spikes.shape[-1]
    if len(graph.monitors) >= t:
        raise RuntimeConfigError(
            f"{net_path}: {len(graph.monitors)} layers need more than T={t} timesteps per sample"
        )
    try:
        graph.net.run(condition=RunSteps(num_steps=graph.num_steps), run_cfg=cfg)
        data = [m.data.get() for m in graph.monitors]
    finally:
        graph.net.stop()
    layers = []
    for k, (name, d) in enumerate(zip(graph.layer_names, data)):
        s = np.moveaxis(d.reshape(*d.shape[:-1], n, t), -2, 0).astype(np.uint8)
        tail = int(s[1:, ..., : k + 1].sum())  # sample 0's latency window is empty (fresh network)
        s[..., : k + 1] = 0
        layers.append(LayerSpikes(name, s, tail))
    return layers
