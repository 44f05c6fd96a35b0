"""The emulator's sigma-delta path: NetX 0.6's ``SDNN`` blocks as Lava's fixed-point models compute them.

Lava's models (``lava.proc.sdn.models``: ``PyDeltaModelFixed`` for the input block,
``PySigmaDeltaModelFixed``, ``PySigmaModelFixed`` for ``sigma_output``), NetX's ``spike_exp = 6``
and ``state_exp = 6``, the graded synapses (``PyConvModelFixed``, ``PyDenseModelBitAcc`` with
``num_message_bits > 0``), operation for operation in numpy's int32 arithmetic (wraps included).

Unlike CUBA layers, NetX does not reset sigma-delta neurons (``reset_interval`` is ignored with a
warning), so a sample starts from the state the previous one left. Samples can therefore not be
batched: the emulator runs the one stream Lava runs (``N·T + L`` steps, the same lead step before
an input block, one step of synaptic delay per layer) and cuts each layer's sample windows from
it, as :mod:`lava_runtime.simulate` cuts them from the Lava run.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from chipnet.errors import RuntimeConfigError
from chipnet.netmodel import (
    SDNN_MESSAGE_SHIFT,
    SDNN_STATE_SHIFT,
    ConvLayer,
    DenseLayer,
    InputLayer,
    Layer,
    NetFile,
)
from lava_runtime.counting import synops_from_spikes, topology
from lava_runtime.records import LayerRecord, stream_steps, to_lava_order

_INT32 = 1 << 32
_INT32_MIN = -(1 << 31)
_FLOAT32_EXACT = 1 << 24  # Lava's conv runs in float32 (torch.FloatTensor): integer sums are exact below 2**24
_FLOAT64_EXACT = 1 << 53


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    """numpy's silent int32 overflow on int64 values."""
    return torch.remainder(x - _INT32_MIN, _INT32) + _INT32_MIN


def _conv(layer: ConvLayer, x: torch.Tensor) -> torch.Tensor:
    """``PyConvModelFixed`` on graded (or 0/1) inputs ``[M, C, H, W]``: float32 conv, ``astype(int32)``, 24-bit clamp."""
    args = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation, "groups": layer.groups}
    w64 = torch.as_tensor(layer.weight, dtype=torch.float64)
    bound = float(x.abs().max()) * float(w64.abs().sum((1, 2, 3)).max()) if x.numel() else 0.0
    if bound < _FLOAT32_EXACT:
        # Every partial sum is an integer below 2**24, so Lava's float32 sum is exact and equals this one.
        a = F.conv2d(x.to(torch.float64), w64, **args)
    else:
        # Lava's float32 may round here: make its own call (lava.proc.conv.utils.conv), one frame at a time.
        w32 = torch.as_tensor(layer.weight, dtype=torch.float32)
        a = torch.cat([F.conv2d(x[i : i + 1].to(torch.float32), w32, **args) for i in range(x.shape[0])])
        a = a.to(torch.float64)
    a = torch.trunc(a).to(torch.int64)  # astype(int32) of the float result
    return torch.remainder(a + (1 << 23), 1 << 24) - (1 << 23)  # signed_clamp(x, bits=24)


def _dense(layer: DenseLayer, x: torch.Tensor) -> torch.Tensor:
    """``PyDenseModelBitAcc`` on graded inputs ``[M, F]``: int32 ``weights.dot(s_in)``, then ``>> -weight_exp``."""
    x = x.reshape(x.shape[0], -1)
    bound = float(x.abs().max()) * float(np.abs(layer.weight).sum(1).max()) if x.numel() else 0.0
    if bound < _FLOAT64_EXACT:
        a = torch.round(x.to(torch.float64) @ torch.as_tensor(layer.weight.T, dtype=torch.float64)).to(torch.int64)
    else:
        a = x.to(torch.int64) @ torch.as_tensor(layer.weight.T, dtype=torch.int64)
    a = _wrap32(a)  # numpy's int32 dot wraps: the exact sum modulo 2**32
    return a >> -layer.weight_exp  # arithmetic shift: floor for negative sums


class _Units:
    """One layer's sigma-delta state and constants (int64 tensors holding int32 values)."""

    def __init__(self, layer: Layer, shape: tuple[int, ...]) -> None:
        n = layer.neuron
        self.role = n.role
        self.vth = n.vth_mant << SDNN_STATE_SHIFT
        self.bias = torch.zeros(shape, dtype=torch.int64)
        if layer.bias is not None:
            extra = (1,) * (len(shape) - 1)  # per channel, broadcast over H, W as NetX's block does
            self.bias = torch.as_tensor(layer.bias << SDNN_STATE_SHIFT, dtype=torch.int64).reshape(-1, *extra)
        self.sigma = torch.zeros(shape, dtype=torch.int64)
        self.act = torch.zeros(shape, dtype=torch.int64)
        self.residue = torch.zeros(shape, dtype=torch.int64)

    def step(self, a_in: torch.Tensor) -> torch.Tensor:
        """One Lava time step: the message sent for input ``a_in``."""
        if self.role == "sigma":  # PySigmaModelFixed sends the decoded sum itself
            self.sigma = _wrap32(self.sigma + a_in)
            return self.sigma
        if self.role == "delta":  # PyDeltaModelFixed: a_in << (spike_exp + state_exp)
            act = _wrap32(a_in << SDNN_STATE_SHIFT)
        else:  # PySigmaDeltaModelFixed, ReLU
            self.sigma = _wrap32(self.sigma + a_in)
            act = torch.clamp_min(_wrap32(self.sigma + self.bias), 0)
        delta = _wrap32(_wrap32(act - self.act) + self.residue)
        magnitude = torch.where(delta == _INT32_MIN, delta, delta.abs())  # np.abs of int32's minimum stays negative
        s = torch.where(magnitude >= self.vth, delta, torch.zeros_like(delta))
        self.residue = delta - s
        self.act = act
        return s >> SDNN_MESSAGE_SHIFT  # state_exp: arithmetic shift, floor for negative messages


def _layer_stream(layer: Layer, shape: tuple[int, ...], inputs: torch.Tensor) -> torch.Tensor:
    """The layer's messages ``[S, *shape]`` for its input stream ``inputs`` ``[S, *input_shape]`` (int64)."""
    steps = inputs.shape[0]
    if isinstance(layer, InputLayer):
        a = inputs  # the payload is the neuron's a_in: no synapse, no delay
    else:
        # A synapse sends at step w what it received at w - 1 (its buffer starts empty).
        a = torch.zeros((steps, *shape), dtype=torch.int64)
        if steps > 1:
            syn = _conv(layer, inputs[:-1]) if isinstance(layer, ConvLayer) else _dense(layer, inputs[:-1])
            a[1:] = syn.reshape(steps - 1, *shape)
    units = _Units(layer, shape)
    return torch.stack([units.step(a[w]) for w in range(steps)])


def emulate_sigma_delta(net: NetFile, spikes: np.ndarray, record: str = "output", arithmetic: str = "fixed") -> list:
    """Every layer's record of ``spikes`` ``[N, C, H, W, T]`` streamed through a sigma-delta network.

    Records hold each layer's graded messages (int32) over its sample windows (window steps
    ``k + 1 .. k + N·T`` of the stream), so they compare with :func:`lava_runtime.simulate.simulate`'s.
    """
    if arithmetic != "fixed":
        # Lava's float SDNN models read NetX's integer vth and bias scaled by 2**12 without the
        # matching input shifts; no float units are defined for them (lava_runtime.float_units).
        raise RuntimeConfigError(
            f"{net.path}: sigma-delta networks run in fixed point only (emu, sim); emu-float and sim-float "
            "have no float units for NetX's SDNN blocks"
        )
    n, t = spikes.shape[0], spikes.shape[-1]
    layers = len(net.layers)
    steps = stream_steps(n, t, layers)
    lead = 1 if net.input_neurons else 0  # as lava_runtime.graph: the input block's window starts at step 1
    frames = np.moveaxis(spikes, -1, 1).reshape(n * t, *spikes.shape[1:-1]).astype(np.int64)
    if not net.input_neurons:
        frames = (frames != 0).astype(np.int64)  # the first synapse's input is unary (NetX: input_message_bits 0)
    stream = np.zeros((steps, *frames.shape[1:]), np.int64)
    stream[lead : lead + n * t] = frames
    x = torch.as_tensor(stream)
    topos = [topology(layer) for layer in net.layers]
    records = []
    incoming = synops_from_spikes(to_lava_order(spikes), topos[0].fanout)
    with torch.inference_mode():
        for k, (name, layer) in enumerate(zip(net.layer_names, net.layers)):
            x = _layer_stream(layer, tuple(layer.shape), x)
            window = x[k + 1 : k + 1 + n * t].reshape(n, t, *layer.shape).numpy()
            window = to_lava_order(np.moveaxis(window, 1, -1)).astype(np.int32)  # [N, *lava_shape, T]
            counts = (window != 0).reshape(n, -1, t).sum(1).astype(np.int64)
            keep = record == "all" or k == layers - 1
            records.append(
                LayerRecord(
                    name,
                    tuple(layer.lava_shape),
                    counts,
                    window if keep else None,
                    synops=incoming,
                    topology=topos[k],
                    graded=True,
                )
            )
            incoming = synops_from_spikes(window, topos[k + 1].fanout) if k < layers - 1 else None
    return records
