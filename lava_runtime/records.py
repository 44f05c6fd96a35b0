"""What a run of a network yields, per layer, on every backend (no Lava imports: export uses it too).

Timing (docs/design.md, "Timing"): samples stream back to back, ``T`` steps each; layer ``k``
(0-based) lags the input by ``k + 1`` steps and is reset when a sample reaches it, so the
sample's activity in layer ``k`` is the ``T`` steps that follow: window steps ``k + 1 .. T + k``
of the stream (where the first block is NetX's ``Input``, whose neurons take the input with no
synapse in front, the stream starts with one empty step so that the same holds). Records hold exactly those steps, re-indexed ``0 .. T - 1`` (the layer's *local
time*, which is the delay-free torch model's time), so step ``t`` of every layer belongs to the
same input frame ``t``. The last sample of a stream runs ``L`` extra steps (``L`` = layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chipnet.errors import RuntimeConfigError
from lava_runtime.counting import Topology


@dataclass
class LayerRecord:
    """One layer's activity over ``N`` samples of ``T`` steps, in the layer's local time.

    ``synops`` are the synaptic operations *into* this layer caused by the presynaptic spikes of
    each step (layer 0's come from the input frames). ``topology`` holds the layer's synapses.
    """

    name: str
    shape: tuple[int, ...]  # neurons in Lava's (W, H, C) order
    counts: np.ndarray  # [N, T] spikes per step
    spikes: np.ndarray | None = None  # [N, *shape, T] where recorded
    synops: np.ndarray | None = None  # [N, T] synaptic operations into this layer per step
    topology: Topology | None = None
    gain: bool = False  # the neuron scales its input by a per-timestep gain
    hardware: dict | None = None  # energy and time measured on Loihi 2 (output layer of a loihi2 run)
    graded: bool = False  # sigma-delta messages: ``spikes`` holds int32 payloads, ``counts`` the nonzero ones
    # A voltage readout's integrators after each step, ``[N, *shape, T]`` (the output layer of a file whose
    # ``readout`` is ``voltage``; fixed point: Loihi's integer ``v``: 2**12 × the float voltage).
    voltage: np.ndarray | None = None


def to_lava_order(x: np.ndarray) -> np.ndarray:
    """``[N, C, H, W, T]`` → ``[N, W, H, C, T]`` (Lava's neuron order); ``[N, F, T]`` stays."""
    return x.transpose(0, *range(x.ndim - 2, 0, -1), x.ndim - 1)


def stream_steps(samples: int, timesteps: int, layers: int) -> int:
    """Steps a stream of ``samples`` needs so that the last one reaches the end of the last layer."""
    return samples * timesteps + layers


def local_windows(stream: np.ndarray, layer: int, samples: int, timesteps: int) -> np.ndarray:
    """Layer ``layer``'s per-sample windows ``[N, ..., T]`` from its stream ``[..., steps]`` (steps last)."""
    start = layer + 1
    window = stream[..., start : start + samples * timesteps]
    window = window.reshape(*stream.shape[:-1], samples, timesteps)
    return np.moveaxis(window, -2, 0)


@dataclass
class Agreement:
    """How two runs of the same samples agree: whole output spike trains, and the first difference."""

    samples: int
    identical: int  # samples whose output layer spike trains are identical
    first_mismatch: dict[str, Any] | None  # {layer, sample, timestep, neuron} over all recorded layers

    @property
    def fraction(self) -> float:
        """Share of samples with identical output spike trains."""
        return self.identical / self.samples if self.samples else 1.0


def compare_records(a: list[LayerRecord], b: list[LayerRecord]) -> Agreement:
    """Compare two runs' records (``record="all"`` for a mismatch in any layer, else the output only).

    A voltage readout's output is identical where its spikes and its voltage traces are.
    """
    if [r.name for r in a] != [r.name for r in b] or [r.shape for r in a] != [r.shape for r in b]:
        raise RuntimeConfigError(f"the runs have different layers: {[r.name for r in a]} vs {[r.name for r in b]}")
    same = _same_output(a[-1], b[-1])
    n = len(same)
    first = None
    for ra, rb in zip(a, b):
        if ra.spikes is None or rb.spikes is None:
            continue
        diff = np.argwhere(ra.spikes != rb.spikes)  # rows: sample, *neuron, step
        if len(diff):
            # Earliest in time first: the later differences are usually its consequences.
            sample, *neuron, step = min(diff.tolist(), key=lambda d: (d[0], d[-1]))
            candidate = {"layer": ra.name, "sample": sample, "timestep": step, "neuron": tuple(neuron)}
            if first is None or (sample, step) < (first["sample"], first["timestep"]):
                first = candidate
    return Agreement(n, int(same.sum()), first)


def _same_output(a: LayerRecord, b: LayerRecord) -> np.ndarray:
    """Per sample: whether two output records agree step for step (spikes, and voltage where both have it)."""
    n = a.spikes.shape[0]
    same = (a.spikes.reshape(n, -1) == b.spikes.reshape(n, -1)).all(1)
    if a.voltage is not None and b.voltage is not None:
        same &= (a.voltage.reshape(n, -1) == b.voltage.reshape(n, -1)).all(1)
    return same


def output_agreement(run: list[LayerRecord], reference: list[LayerRecord]) -> float:
    """Share of samples whose output (spike trains, and a voltage readout's voltage) equals the reference's."""
    same = _same_output(run[-1], reference[-1])
    return float(same.mean()) if len(same) else 1.0
