"""The deployed network as a NIR graph (Neuromorphic Intermediate Representation).

Nodes follow NIR's CubaLIF equations, integrated by a client with forward Euler at its own
step ``dt`` (``--nir-dt``)::

    τ_syn dI/dt = -I + w_in · x          τ_mem dv/dt = (v_leak - v) + r · I

Loihi's 12-bit decay ``d`` (fraction ``α = d / 4096`` lost per step) becomes ``τ = dt / α``;
``w_in = τ_syn / dt`` and ``r = τ_mem / dt`` make one Euler step add the synaptic input to
``I`` and ``I`` to ``v`` unscaled, as the chip does. Loihi adds its bias to ``v`` every step,
so it is written as ``v_leak = bias / α_v`` (one Euler step adds ``α_v · v_leak = bias``) with
a zero synapse bias. A zero decay (a perfect integrator) gets the finite ``τ = dt · 2**60``,
whose per-step loss ``2**-60`` is below float64 resolution, and the matching gain ``2**60``.
Weights and thresholds stay in the file's units (``emu-float`` arithmetic).

Clients and their step: Norse's ``from_nir(graph, dt=...)`` integrates at the ``dt`` it is
given (1e-3 by default); snnTorch 1.0's ``import_from_nir`` hard-codes 1e-4 and checks
``r == tau_mem / 1e-4``, so its files need ``--nir-dt 1e-4``.

NIR cannot say that Loihi fires on ``v > θ`` (not ``>=``), that decays round toward zero in
24-bit registers, or that folded SMA layers scale their input by a per-timestep gain: those go
into the graph's ``metadata`` (``sma_form`` says whether the gains are folded into the weights,
``static``, or left in ``input_gain``, ``per-timestep``, which NIR clients do not run).
"""

from __future__ import annotations

import io
from pathlib import Path

import nir
import numpy as np

from chipnet.atomic import atomic_write
from chipnet.chip import DECAY_UNITY
from chipnet.errors import ExportError
from chipnet.netmodel import ConvLayer, NetFile

# A zero decay as a finite time constant: 1 - 2**-60 rounds to 1 in float32 and float64 alike.
PERFECT_INTEGRATOR_STEPS = 2.0**60
DEFAULT_DT = 1e-3


def time_constant(decay: int, dt: float) -> tuple[float, float]:
    """``(τ, gain)`` of a 12-bit Loihi decay at Euler step ``dt``: ``τ = dt / α``, ``gain = τ / dt``."""
    steps = DECAY_UNITY / decay if decay > 0 else PERFECT_INTEGRATOR_STEPS
    return float(dt * steps), float(steps)


def sma_form(net: NetFile) -> str:
    """``per-timestep`` if any layer scales its input by a gain schedule, ``static`` for a folded SMA file, else ``none``."""
    if any(layer.gain is not None for layer in net.layers):
        return "per-timestep"
    return "static" if net.metadata.get("sma") else "none"


def ungrouped(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's kernel ``[Cout, Cin/groups, kh, kw]`` as the equal dense one ``[Cout, Cin, kh, kw]``.

    NIR's ``Conv2d`` infers its input channels as ``weight.shape[1]``, so a grouped conv (a max pool's
    depthwise conv, the spiking SMA form's 1×1 sum over branches) fails the graph's type check; the
    dense kernel, zero outside each group, computes the same and every client runs it.
    """
    if groups == 1:
        return weight
    cout, cin_g = weight.shape[:2]
    per_group = cout // groups
    dense = np.zeros((cout, cin_g * groups, *weight.shape[2:]), dtype=weight.dtype)
    for o in range(cout):
        g = o // per_group
        dense[o, g * cin_g : (g + 1) * cin_g] = weight[o]
    return dense


def to_nir(net: NetFile, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """NIR graph ``input → (Conv2d | Affine) + CubaLIF … → output`` of an exported network."""
    if not dt > 0 or not np.isfinite(dt):
        raise ExportError(f"{net.path}: the NIR step --nir-dt must be a positive number of seconds, got {dt}")
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(net.input_shape))}
    edges: list[tuple[str, str]] = []
    prev = "input"
    gains = {}
    for k, layer in enumerate(net.layers):
        syn, neu = f"{k}_synapse", f"{k}_neuron"
        shape = tuple(layer.shape)
        zero_bias = np.zeros(layer.shape[0])  # the bias is the neuron's (v_leak), not the synapse's
        if isinstance(layer, ConvLayer):
            nodes[syn] = nir.Conv2d(
                input_shape=tuple(layer.input_shape[1:]),
                weight=ungrouped(layer.weight, layer.groups).astype(np.float64),
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=1,
                bias=zero_bias,
            )
        else:
            if len(layer.input_shape) > 1:
                flat = f"{k}_flatten"
                nodes[flat] = nir.Flatten(input_type={"input": np.array(layer.input_shape)}, start_dim=0)
                edges.append((prev, flat))
                prev = flat
            weight = layer.weight.astype(np.float64) * 2.0**layer.weight_exp
            nodes[syn] = nir.Affine(weight=weight, bias=zero_bias)
        n = layer.neuron
        tau_syn, w_in = time_constant(n.i_decay, dt)
        tau_mem, r = time_constant(n.v_decay, dt)
        full = np.ones(shape)
        v_leak = np.zeros(shape)
        if layer.bias is not None:
            per_channel = layer.bias.astype(np.float64).reshape(-1, *(1,) * (len(shape) - 1))
            v_leak = full * per_channel * r  # r = 1 / α_v: one Euler step adds exactly the bias
        nodes[neu] = nir.CubaLIF(
            tau_syn=full * tau_syn,
            tau_mem=full * tau_mem,
            r=full * r,
            v_leak=v_leak,
            v_threshold=full * float(n.vth_mant),
            w_in=full * w_in,
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
        "spike_condition": "v > v_threshold (strict, Loihi); reset to 0",
        "arithmetic": "float units of emu-float; the chip computes in integers: states <<6, 12-bit decays "
        "rounded toward zero, 24-bit states",
        "timing": "no delays: layer k's step t integrates layer k-1's step t (each sample's local time; "
        "the chip adds one step of latency per layer)",
        "bias": "Loihi's per-step voltage bias is v_leak / r; synapse biases are zero",
        "sma_form": sma_form(net),
        # "voltage": the output CubaLIF never fires; the class is its largest v after the sample's last step.
        "readout": net.readout,
        "timesteps": np.int64(net.timesteps or 0),
    }
    if gains:
        metadata["input_gain"] = gains  # per neuron node: x = sign(x)·((|x|·mant[t, c]) >> exp)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(net: NetFile, path: str | Path, dt: float = DEFAULT_DT) -> Path:
    """Write the NIR graph of ``net`` to ``path`` atomically."""
    buf = io.BytesIO()
    nir.write(buf, to_nir(net, dt))
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
