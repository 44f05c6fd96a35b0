"""What a Loihi 2 chip can hold, checked before a file is written, and a core-count estimate.

Limits come from the Lava fixed-point models (register widths) and Intel's Loihi 2 brief
("Taking Neuromorphic Computing to the Next Level with Loihi 2", Intel Labs, 2021: 128 neuro
cores and up to 1 M neurons and 120 M synapses per chip, i.e. 8192 neurons and ~0.94 M
synapses per core). The core count is an estimate for planning, not a mapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chipnet.chip import DECAY_MAX, FILE_WEIGHT_RANGE, VTH_MAX, WEIGHT_FULL_SCALE
from chipnet.errors import SmaLavaError
from chipnet.netmodel import ConvLayer, NetFile
from lava_runtime.counting import topology

NEURONS_PER_CORE = 8192
SYNAPSES_PER_CORE = 120_000_000 // 128
SOURCES = {
    "neurons_per_core": "Intel Labs, Loihi 2 brief (2021): 1 M neurons / 128 cores",
    "synapses_per_core": "Intel Labs, Loihi 2 brief (2021): 120 M synapses / 128 cores",
    "registers": "lava.proc.lif.models PyLifModelBitAcc (24-bit u, v; 17-bit vth; 12-bit decays)",
}


class ConstraintError(SmaLavaError, ValueError):
    """A layer does not fit Loihi 2; the message names the layer and the limit."""


@dataclass
class LayerFootprint:
    """One layer's size on the chip."""

    name: str
    kind: str
    input_shape: list[int]
    output_shape: list[int]
    neurons: int
    synapses: int  # nonzero connections, as the runtime counts them (padding and zero weights excluded)
    fan_in: int
    weight_bits: int
    weight_exp: int
    weight_range_used: float  # max |integer weight| / 255: how much of the 8-bit range the layer uses
    cores: int


def footprint(net: NetFile) -> list[LayerFootprint]:
    """Neurons, synapses, fan-in, weight bits/exponent and an estimated core count per layer."""
    rows = []
    for name, layer in zip(net.layer_names, net.layers):
        neurons = int(np.prod(layer.shape))
        synapses = topology(layer).synapses
        w = layer.weight if isinstance(layer, ConvLayer) or layer.file_weight is None else layer.file_weight
        peak = int(np.abs(w).max(initial=0))
        bits = max(1, peak.bit_length()) + 1  # sign bit
        exp = 0 if isinstance(layer, ConvLayer) else int(layer.weight_exp)
        cores = max(math.ceil(neurons / NEURONS_PER_CORE), math.ceil(synapses / SYNAPSES_PER_CORE), 1)
        rows.append(
            LayerFootprint(
                name,
                layer.kind,
                list(layer.input_shape),
                list(layer.shape),
                neurons,
                synapses,
                layer.fan_in,
                bits,
                exp,
                peak / WEIGHT_FULL_SCALE,
                cores,
            )
        )
    return rows


def check(net: NetFile) -> None:
    """Raise :class:`ConstraintError` for the first layer Loihi 2 cannot hold."""
    for name, layer in zip(net.layer_names, net.layers):
        lo, hi = FILE_WEIGHT_RANGE
        w = (
            layer.weight
            if isinstance(layer, ConvLayer)
            else (layer.file_weight if layer.file_weight is not None else layer.weight)
        )
        if w.size and (w.min() < lo or w.max() > hi):
            raise ConstraintError(
                f"layer {name}: weights span [{w.min()}, {w.max()}], Loihi's 8-bit synapses "
                f"hold [{lo}, {hi}] (NetX would clip them)"
            )
        n = layer.neuron
        if n.vth_mant > VTH_MAX:
            raise ConstraintError(f"layer {name}: threshold vThMant={n.vth_mant} exceeds the 17-bit limit {VTH_MAX}")
        for key, value in (("iDecay", n.i_decay), ("vDecay", n.v_decay)):
            if value > DECAY_MAX + 1:
                raise ConstraintError(f"layer {name}: {key}={value} exceeds the 12-bit decay range")
        if layer.fan_in > SYNAPSES_PER_CORE:
            raise ConstraintError(
                f"layer {name}: fan-in {layer.fan_in} exceeds one core's "
                f"{SYNAPSES_PER_CORE} synapses, and a neuron cannot be split across cores"
            )
