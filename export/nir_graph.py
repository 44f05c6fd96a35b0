"""The deployed network as a NIR graph (Neuromorphic Intermediate Representation).

Nodes follow ``nir``'s continuous-time conventions with ``dt`` per timestep: Loihi's 12-bit
decays ``d`` (fraction ``α = d / 4096`` lost per step) become ``τ = dt / α``; ``w_in = 1 / α_i``
and ``r = 1 / α_v`` make one Euler step add the synaptic input to ``I`` and ``I`` to ``v``
unscaled, as the chip does. Weights and thresholds stay in the file's integer units.

NIR cannot say that Loihi fires on ``v > θ`` (not ``>=``), that decays round toward zero in
24-bit registers, or that folded SMA layers scale their input by a per-timestep gain: those go
into the graph's ``metadata`` so a reader can reproduce the chip.
"""
from __future__ import annotations

import io
from pathlib import Path

import nir
import numpy as np

from lava_runtime.netfile import DECAY_UNITY, ConvLayer, NetFile
from train.atomic import atomic_write


def _tau(decay: int, dt: float) -> float:
    return float(dt * DECAY_UNITY / decay) if decay > 0 else float("inf")


def to_nir(net: NetFile, dt: float = 1e-3) -> nir.NIRGraph:
    """NIR graph ``input → (Conv2d | Affine) + CubaLIF … → output`` of an exported network."""
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(net.input_shape))}
    edges: list[tuple[str, str]] = []
    prev = "input"
    gains = {}
    for k, layer in enumerate(net.layers):
        syn, neu = f"{k}_synapse", f"{k}_neuron"
        shape = np.array(layer.shape)
        bias = layer.bias.astype(np.float64) if layer.bias is not None else np.zeros(layer.shape[0])
        if isinstance(layer, ConvLayer):
            nodes[syn] = nir.Conv2d(
                input_shape=tuple(layer.input_shape[1:]), weight=layer.weight.astype(np.float64),
                stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=bias,
            )
        else:
            if len(layer.input_shape) > 1:
                flat = f"{k}_flatten"
                nodes[flat] = nir.Flatten(input_type={"input": np.array(layer.input_shape)}, start_dim=0)
                edges.append((prev, flat))
                prev = flat
            weight = layer.weight.astype(np.float64) * 2.0 ** layer.weight_exp
            nodes[syn] = nir.Affine(weight=weight, bias=bias)
        n = layer.neuron
        alpha_i, alpha_v = n.i_decay / DECAY_UNITY, n.v_decay / DECAY_UNITY
        full = np.ones(shape)
        nodes[neu] = nir.CubaLIF(
            tau_syn=full * _tau(n.i_decay, dt), tau_mem=full * _tau(n.v_decay, dt),
            r=full * (1 / alpha_v if alpha_v else 1.0), v_leak=full * 0.0,
            v_threshold=full * float(n.vth_mant), w_in=full * (1 / alpha_i if alpha_i else 1.0),
        )
        edges += [(prev, syn), (syn, neu)]
        prev = neu
        if layer.gain is not None:
            gains[neu] = {"mant": layer.gain.mant.astype(np.int64), "exp": np.int64(layer.gain.exp)}
    nodes["output"] = nir.Output(output_type=np.array(net.layers[-1].shape))
    edges.append((prev, "output"))
    metadata = {
        "source": "sma-lava export (Loihi 2 fixed point)",
        "dt": np.float64(dt),
        "spike_condition": "v > v_threshold (strict, Loihi)",
        "arithmetic": "integer: weights and thresholds in the file's units, states <<6, 12-bit decays "
                      "rounded toward zero, 24-bit states, one timestep of delay per layer",
        "timesteps": np.int64(net.timesteps or 0),
    }
    if gains:
        metadata["input_gain"] = gains  # per neuron node: x = sign(x)·((|x|·mant[t, c]) >> exp)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(net: NetFile, path: str | Path, dt: float = 1e-3) -> Path:
    """Write the NIR graph of ``net`` to ``path`` atomically."""
    buf = io.BytesIO()
    nir.write(buf, to_nir(net, dt))
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
