"""Run a graph on a backend and collect every layer's activity, aligned to the torch timeline."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lava.magma.core.run_conditions import RunSteps

from lava_runtime.backends import run_config
from lava_runtime.errors import RuntimeConfigError
from lava_runtime.graph import build_graph


@dataclass
class LayerRecord:
    """One layer's output over ``N`` samples of ``T`` steps.

    Layer ``k`` (0-based) is ``k + 1`` steps behind the input, so the first ``k + 1`` steps of a
    sample's window still carry the previous sample's tail. Those steps are zeroed in
    ``counts`` and ``spikes`` (SLAYER's ``delay_shift`` model has zeros there too) and their
    spikes, real activity on the chip, are counted in ``tail_spikes``.
    """

    name: str
    shape: tuple[int, ...]  # neurons in Lava's (W, H, C) order
    counts: np.ndarray  # [N, T] spikes per step
    tail_spikes: int
    spikes: np.ndarray | None = None  # [N, *shape, T] where recorded


def run_layers(net_path: str | Path, spikes: np.ndarray, backend: str = "sim", record: str = "output") -> list[LayerRecord]:
    """Stream ``spikes`` ``[N, C, H, W, T]`` through the network and return every layer's record."""
    cfg = run_config(backend)
    graph = build_graph(net_path, spikes, record=record)
    n, t = spikes.shape[0], spikes.shape[-1]
    if len(graph.monitors) >= t:
        raise RuntimeConfigError(f"{net_path}: {len(graph.monitors)} layers need more than T={t} timesteps per sample")
    try:
        graph.net.run(condition=RunSteps(num_steps=graph.num_steps), run_cfg=cfg)
        data = [m.data.get() if full else m.counts.get() for m, full in zip(graph.monitors, graph.recorded)]
    finally:
        graph.net.stop()
    records = []
    for k, (name, full, d, layer) in enumerate(zip(graph.layer_names, graph.recorded, data, graph.net.layers)):
        shape = tuple(layer.out.shape)
        latency = k + 1
        if full:
            s = np.moveaxis(d.reshape(*shape, n, t), -2, 0).astype(np.uint8)
            counts = s.reshape(n, -1, t).sum(1).astype(np.int64)
        else:
            s, counts = None, d.reshape(n, t).astype(np.int64)
        tail = int(counts[1:, :latency].sum())  # sample 0's latency window is empty (fresh network)
        counts[:, :latency] = 0
        if s is not None:
            s[..., :latency] = 0
        records.append(LayerRecord(name, shape, counts, tail, s))
    return records
