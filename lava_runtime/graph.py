"""The Lava process graph of an exported file: source → NetX network → per-layer monitors.

Samples are streamed back to back, ``T`` steps each. NetX's ``reset_interval`` resets each
layer's neurons when the first step of a new sample reaches it (layer k at step ``1 + k`` of
the sample window, one step of synaptic delay per layer), so nothing of one sample leaks into
the next and the chip takes a new sample every ``T`` steps. After the last sample the source
sends ``L`` empty steps (``L`` = layers) so that its last frame reaches the output layer
(timing in :mod:`lava_runtime.records`).

Layers whose HDF5 group holds ``gain_mant``/``gain_exp`` (folded SMA, docs/netx-format.md) get
a :class:`~lava_runtime.processes.gain_lif.GainLIFReset` neuron (built by
:class:`~lava_runtime.processes.gain_network.GainNetwork`); every other layer is stock NetX.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lava.lib.dl import netx
from lava.lib.dl.netx.blocks.process import Conv, Dense, Input
from lava.magma.core.process.process import AbstractProcess
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import RingBuffer as SourceBuffer
from lava.proc.monitor.process import Monitor
from lava.proc.sdn.process import Delta, Sigma, SigmaDelta

import lava_runtime.lava_start  # noqa: F401  (before any Lava import: see its doc)
from chipnet.errors import RuntimeConfigError
from lava_runtime.counting import Topology, conv_fanout, dense_fanout
from lava_runtime.float_units import to_float_units
from lava_runtime.processes.activity import ActivityCounter
from lava_runtime.processes.gain_lif import GainLIFReset
from lava_runtime.processes.gain_network import GainNetwork
from lava_runtime.records import stream_steps

COUNT_BITS = 8  # event counts reach the first synapse as 8-bit graded messages (chipnet.events.COUNT_MAX)


@dataclass
class Graph:
    """A runnable network, its input source, what watches each layer, and each layer's synapses.

    Layer ``i`` is recorded spike by spike by ``sinks[i]`` (a ``RingBuffer``) where that is not
    None; all other layers are counted by the one ``counter`` (spikes and the synops they cause
    in layer ``i + 1``, per step), layer ``counted[j]`` on its input ``j``.
    ``topology[i]`` describes the synapses *into* layer ``i`` (layer 0's are fed by the input).
    """

    net: netx.hdf5.Network
    source: SourceBuffer
    sinks: list[SinkBuffer | None]
    counter: ActivityCounter | None
    counted: list[int]
    layer_names: list[str]
    num_steps: int
    topology: list[Topology]
    gains: list[bool]
    graded: list[bool]  # the block's neuron is a sigma-delta unit: graded messages, never reset
    voltage: Monitor | None = None  # probes the output layer's ``v`` every step (a voltage readout)


def to_lava_layout(
    spikes: np.ndarray, steps: int | None = None, lead: int = 0, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """SLAYER ``[N, C, H, W, T]`` (or ``[N, F, T]``) samples → one int32 Lava stream ``[W, H, C, steps]``.

    ``lead`` empty steps come first and zeros follow the N·T sample steps. ``shape`` is the
    port's shape where it differs: a 1-D port takes each frame flattened in ``[C, H, W]`` order
    (what NetX's flatten after a ``[C, H, W]`` input does).
    """
    n, t = spikes.shape[0], spikes.shape[-1]
    lava = spikes.transpose(*range(spikes.ndim - 2, 0, -1), 0, spikes.ndim - 1)  # [W, H, C, N, T]
    if shape is not None and len(shape) == 1 and spikes.ndim > 3:
        lava = spikes.reshape(n, -1, t).transpose(1, 0, 2)
    stream = lava.reshape(*lava.shape[:-2], n * t).astype(np.int32)
    pad = (steps or n * t + lead) - n * t - lead
    parts = [np.zeros((*stream.shape[:-1], lead), np.int32)] if lead > 0 else []
    parts += [stream] + ([np.zeros((*stream.shape[:-1], pad), np.int32)] if pad > 0 else [])
    return np.concatenate(parts, -1) if len(parts) > 1 else stream


def layer_topology(block: AbstractProcess, input_shape: tuple[int, ...]) -> Topology:
    """Synapses into a NetX ``Conv`` or ``Dense`` block, from the weights its Lava synapse holds."""
    if isinstance(block, Input):  # the payloads reach the neurons directly: no synapses
        fanout = np.zeros(tuple(int(v) for v in block.out.shape), np.int64)
        return Topology("input", fanout, 0, 0, 0)
    syn = block.synapse
    if isinstance(block, Conv):
        weight = np.asarray(syn.weight.init)
        fanout = conv_fanout(
            weight,
            tuple(syn.input_shape),
            np.asarray(syn.stride.init),
            np.asarray(syn.padding.init),
            np.asarray(syn.dilation.init),
            int(np.asarray(syn.groups.init).reshape(-1)[0]),
        )
        return Topology("conv", fanout, int(fanout.sum()), int(weight.size), int(np.count_nonzero(weight)))
    if isinstance(block, Dense):
        weights = np.asarray(syn.weights.init)
        fanout = dense_fanout(weights, input_shape)
        return Topology("dense", fanout, int(fanout.sum()), int(weights.size), int(np.count_nonzero(weights)))
    raise RuntimeConfigError(f"no synapse count for NetX block {block.block}")


def gain_rows(net: netx.hdf5.Network) -> list[tuple[bool, int | None]]:
    """Per block of the built network: whether its neuron has a gain and the gain table's rows."""
    rows = []
    for block in net.layers:
        gain = isinstance(block.neuron, GainLIFReset)
        rows.append((gain, int(block.neuron.gain_mant.shape[0]) if gain else None))
    return rows


def build_graph(
    net_path: str | Path,
    spikes: np.ndarray,
    record: str = "output",
    arithmetic: str = "fixed",
    voltage: bool = False,
    graded_input: bool = False,
) -> Graph:
    """Lava processes that stream ``spikes`` ``[N, C, H, W, T]`` through the network in ``net_path``.

    ``record`` is ``"output"`` (every spike of the output layer, counts elsewhere) or ``"all"``;
    ``arithmetic="float"`` puts the blocks' parameters in float units (for Lava's float models).
    ``voltage`` adds a ``Monitor`` on the output layer's ``v`` (a voltage readout reads it at the
    end of each sample's window). ``graded_input`` makes the first synapse take 8-bit graded messages
    (event counts) instead of unary spikes.
    """
    net_path = Path(net_path)
    timesteps = spikes.shape[-1]
    try:  # NetX reads the file itself; the gains are taken from the blocks it builds
        with warnings.catch_warnings():
            # Sigma-delta blocks ignore reset_interval; the runtime says so in its reports instead.
            warnings.filterwarnings("ignore", message="Reset is not supported with Sigma Delta")
            net = GainNetwork(
                net_config=str(net_path),
                reset_interval=timesteps,
                reset_offset=1,
                input_message_bits=COUNT_BITS if graded_input else 0,
            )
    except (KeyError, ValueError, RuntimeError) as e:
        raise RuntimeConfigError(f"{net_path}: cannot build the Lava network ({e})") from None
    rows_per_layer = gain_rows(net)
    for k, (gain, rows) in enumerate(rows_per_layer):
        if gain and rows != timesteps:
            raise RuntimeConfigError(
                f"{net_path}: layer {k} has a gain table of {rows} timesteps, the run has {timesteps}"
            )
    if arithmetic == "float":
        to_float_units(net.layers)
    num_steps = stream_steps(spikes.shape[0], timesteps, len(net.layers))
    first = net.layers[0]
    if isinstance(first, Input):
        # NetX's Input block leaves its inp port unconnected: input goes to the neuron's a_in, as in
        # lava-dl's tests. With no synapse in front, the input layer would see frame 0 at step 1,
        # a step before NetX's reset (offset + 1); one empty lead step keeps the records' timing
        # (layer k's sample window starts at step k + 1) and each reset on its sample's first step.
        source = SourceBuffer(data=to_lava_layout(spikes, num_steps, lead=1))
        source.s_out.connect(first.neuron.a_in)
    else:
        source = SourceBuffer(data=to_lava_layout(spikes, num_steps, shape=tuple(net.inp.shape)))
        source.s_out.connect(net.inp)
    topology, shape_in = [], tuple(net.inp.shape)
    for layer in net.layers:
        topology.append(layer_topology(layer, shape_in))
        shape_in = tuple(layer.out.shape)
    last = len(net.layers) - 1
    sinks: list[SinkBuffer | None] = []
    for i, layer in enumerate(net.layers):
        sink = None
        if record == "all" or i == last:
            sink = SinkBuffer(shape=layer.out.shape, buffer=num_steps)
            layer.out.connect(sink.a_in)
        sinks.append(sink)
    counted = [i for i, sink in enumerate(sinks) if sink is None]
    counter = None
    if counted:
        counter = ActivityCounter(
            shapes=[tuple(net.layers[i].out.shape) for i in counted],
            num_steps=num_steps,
            fanouts=[topology[i + 1].fanout for i in counted],
        )
        for j, i in enumerate(counted):
            net.layers[i].out.connect(counter.port(j))
    names = [f"{i}:{layer.block.lower()}" for i, layer in enumerate(net.layers)]
    gains = [g for g, _ in rows_per_layer]
    graded = [isinstance(layer.neuron, (Sigma, Delta, SigmaDelta)) for layer in net.layers]
    probe = None
    if voltage:
        probe = Monitor()
        probe.probe(net.layers[last].neuron.v, num_steps)
    return Graph(net, source, sinks, counter, counted, names, num_steps, topology, gains, graded, probe)
