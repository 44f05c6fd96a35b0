"""An exported NetX HDF5 file as plain data: the layers, their neurons and gains, with the weights the chip holds.

:func:`chipnet.netfile.read_net` (the defensive reader) builds these; each dataclass checks
its own invariants (ranges, shapes between a layer's parts) so that no invalid network exists.

Weights are stored as the Lava fixed-point models use them: conv kernels as NetX passes them
(the file's integers; Lava's flipped-kernel convolution equals torch's correlation with the
file's ``[Cout, Cin/groups, kh, kw]`` kernel), dense matrices after NetX's
``optimize_weight_bits`` and the Dense model's clip/truncate, with their shared exponent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from chipnet.chip import BIAS_RANGE, DECAY_UNITY, GAIN_EXP_RANGE, GAIN_MANT_RANGE, VTH_MANT_FILE_MAX
from chipnet.errors import RuntimeConfigError

# The file's own names (docs/netx-format.md) that the reader and the writer share.
LAYERS = "layer"  # the group of numbered layer groups: "0" the input, then one per block
GAIN_MANT = "gain_mant"  # int [T, C]: per-timestep, per-channel gain mantissa of a folded attention layer
GAIN_EXP = "gain_exp"  # int: the gain's shared exponent


def fail(layer: str, problem: str) -> RuntimeConfigError:
    return RuntimeConfigError(f"layer {layer}: {problem}")


@dataclass
class Cuba:
    """Loihi CUBA neuron in fixed point (Lava's ``PyLifResetModelBitAcc``), per step::

        u = sign(u·(4096 - i_decay)) · (|u·(4096 - i_decay)| >> 12) + (a_in << 6)   wrapped to 24 bits
        v = sign(v·(4096 - v_decay)) · (|v·(4096 - v_decay)| >> 12) + u + (bias << 6)  clipped to ±(2²³ - 1)
        s = v > vth_mant << 6;  v[s] = 0

    ``i_decay`` is the file's ``iDecay`` (NetX passes ``du = iDecay - 1``, Lava adds its
    ``ds_offset`` of 1 back).
    """

    layer: str
    i_decay: int | np.ndarray  # one value, or one per channel (SLAYER's shared_param=False)
    v_decay: int | np.ndarray
    vth_mant: int
    ref_delay: int = 1  # read and checked; NetX 0.6 does not pass it to Lava's LIF, so nothing uses it

    def __post_init__(self) -> None:
        for key, value in (("iDecay", self.i_decay), ("vDecay", self.v_decay)):
            arr = np.asarray(value)
            if arr.size and not (0 <= arr.min() and arr.max() <= DECAY_UNITY):
                shown = value if arr.ndim == 0 else f"[{arr.min()}..{arr.max()}]"
                raise fail(self.layer, f"neuron {key}={shown} outside [0, {DECAY_UNITY}] (12-bit decay)")
        if not 0 <= self.vth_mant <= VTH_MANT_FILE_MAX:
            raise fail(self.layer, f"neuron vThMant={self.vth_mant} outside [0, {VTH_MANT_FILE_MAX}]")
        if self.ref_delay < 0:
            raise fail(self.layer, f"neuron refDelay={self.ref_delay} is negative")


SDNN_ROLES = ("delta", "sigma_delta", "sigma")
SDNN_STATE_SHIFT = 12  # NetX's spike_exp (6) + state_exp (6): Lava scales vth and bias by 2**12
SDNN_MESSAGE_SHIFT = 6  # state_exp: the fixed-point model sends s_out >> 6
SDNN_BIAS_RANGE = (-(1 << 19), (1 << 19) - 1)  # bias << 12 must fit Lava's int32 state


@dataclass
class SigmaDelta:
    """Lava's sigma-delta units as NetX 0.6 builds them from an ``SDNN`` neuron (``PySigmaDeltaModelFixed``).

    ``role`` is what NetX makes of the layer: ``"delta"`` (input block: ``Delta``), ``"sigma"``
    (``sigma_output``: ``Sigma``, the output decoded), else ``"sigma_delta"`` (``SigmaDelta``,
    ReLU). Per step, in int32 with numpy's wrap::

        sigma   = sigma + a_in                              (sigma, sigma_delta)
        act_new = relu(sigma + bias << 12)                  (sigma_delta)   act_new = a_in << 12 (delta)
        delta   = act_new - act + residue;  act = act_new
        s       = delta where |delta| >= vth_mant << 12 else 0;  residue = delta - s
        out     = s >> 6   (floor; the sigma unit sends sigma itself)

    NetX ignores ``reset_interval`` for these neurons, so the states persist across samples.
    ``message_bits`` is the file's ``messageBits`` (NetX's default 16): the width of the graded
    payload on the chip; Lava's Python models do not clip to it.
    """

    layer: str
    vth_mant: int
    role: str
    message_bits: int = 16
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.role not in SDNN_ROLES:
            raise fail(self.layer, f"sigma-delta role {self.role!r} must be one of {', '.join(SDNN_ROLES)}")
        if not 0 <= self.vth_mant <= VTH_MANT_FILE_MAX:
            raise fail(self.layer, f"neuron vThMant={self.vth_mant} outside [0, {VTH_MANT_FILE_MAX}]")
        if not 1 <= self.message_bits <= 24:
            raise fail(self.layer, f"neuron messageBits={self.message_bits} outside [1, 24] (graded payload bits)")


Neuron = Union[Cuba, SigmaDelta]


@dataclass
class Gain:
    """Per-timestep, per-channel input gain of a folded SMA layer (docs/netx-format.md)::

    x = a_in << 6;  x = sign(x) · ((|x| · mant[t, c]) >> exp);  u = decay(u) + x
    """

    layer: str
    mant: np.ndarray  # int64 [T, C]
    exp: int

    def __post_init__(self) -> None:
        if self.mant.ndim != 2:
            raise fail(self.layer, f"gain_mant must be [T, C], got shape {list(self.mant.shape)}")
        lo, hi = GAIN_MANT_RANGE
        if self.mant.size and (self.mant.min() < lo or self.mant.max() > hi):
            raise fail(
                self.layer, f"gain_mant values must lie in [{lo}, {hi}], found [{self.mant.min()}, {self.mant.max()}]"
            )
        if not GAIN_EXP_RANGE[0] <= self.exp <= GAIN_EXP_RANGE[1]:
            raise fail(self.layer, f"gain_exp={self.exp} outside {list(GAIN_EXP_RANGE)}")


@dataclass
class ConvLayer:
    """Conv synapse + CUBA neurons: ``a = wrap24(conv2d(s, weight))`` (torch correlation order).

    Shapes are ``[C, H, W]``; stride, padding and dilation are ``(H, W)`` as in the file.
    """

    name: str
    input_shape: tuple[int, int, int]
    shape: tuple[int, int, int]
    weight: np.ndarray  # int64 [Cout, Cin/groups, kh, kw]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    neuron: Neuron
    bias: np.ndarray | None = None  # int64 [Cout]
    gain: Gain | None = None
    kind: str = field(default="conv", init=False)

    def __post_init__(self) -> None:
        cin, h, w = self.input_shape
        if self.weight.ndim != 4:
            raise fail(
                self.name, f"conv weight must be [Cout, Cin/groups, kh, kw], got shape {list(self.weight.shape)}"
            )
        cout, cin_g, kh, kw = self.weight.shape
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
            raise fail(
                self.name,
                f"stride {self.stride} and dilation {self.dilation} must be >= 1, padding {self.padding} >= 0",
            )
        if self.groups < 1 or cin % self.groups or cout % self.groups or cin_g * self.groups != cin:
            raise fail(
                self.name,
                f"weight {list(self.weight.shape)} with groups={self.groups} does not fit {cin} input channels",
            )
        out_hw = [
            (size + 2 * pad - dil * (k - 1) - 1) // st + 1
            for size, pad, dil, k, st in zip((h, w), self.padding, self.dilation, (kh, kw), self.stride)
        ]
        expected = (cout, *out_hw)
        if min(out_hw) < 1 or tuple(self.shape) != expected:
            raise fail(
                self.name,
                f"shape {list(self.shape)} does not match the convolution of input "
                f"{list(self.input_shape)}, which gives {list(expected)}",
            )
        _check_bias_gain(self.name, self.bias, self.gain, cout, self.neuron)

    @property
    def lava_shape(self) -> tuple[int, ...]:
        """Neurons in Lava's ``(W, H, C)`` order."""
        return tuple(self.shape[::-1])

    @property
    def fan_in(self) -> int:
        """Synapses per neuron."""
        return int(np.prod(self.weight.shape[1:]))


@dataclass
class DenseLayer:
    """Dense synapse + CUBA neurons: ``a = (weight @ s) << weight_exp`` (a right shift when negative).

    ``weight`` is the chip's integer matrix (after NetX's ``optimize_weight_bits`` and the Lava
    Dense model's clip and truncation), inputs are flattened in ``[C, H, W]`` order.
    """

    name: str
    input_shape: tuple[int, ...]
    shape: tuple[int]
    weight: np.ndarray  # int64 [out, in]
    weight_exp: int
    neuron: Neuron
    bias: np.ndarray | None = None  # int64 [out]
    gain: Gain | None = None
    file_weight: np.ndarray | None = None  # the file's integers, whose nonzeros are Lava's synapses
    kind: str = field(default="dense", init=False)

    def __post_init__(self) -> None:
        n_in = int(np.prod(self.input_shape))
        if self.weight.ndim != 2 or self.weight.shape != (self.shape[0], n_in):
            raise fail(
                self.name,
                f"dense weight {list(self.weight.shape)} must be [{self.shape[0]}, {n_in}] "
                f"(out, flattened input {list(self.input_shape)})",
            )
        if self.weight_exp > 0 or self.weight_exp < -8:
            raise fail(self.name, f"weight exponent {self.weight_exp} outside [-8, 0]")
        _check_bias_gain(self.name, self.bias, self.gain, self.shape[0], self.neuron)
        if self.file_weight is not None and self.file_weight.shape != self.weight.shape:
            raise fail(self.name, f"file weight {list(self.file_weight.shape)} differs from {list(self.weight.shape)}")

    @property
    def lava_shape(self) -> tuple[int, ...]:
        """Neurons in Lava's order (one axis)."""
        return tuple(self.shape)

    @property
    def fan_in(self) -> int:
        """Synapses per neuron."""
        return int(self.weight.shape[1])


@dataclass
class InputLayer:
    """NetX's ``Input`` block: CUBA neurons whose ``a_in`` receives the input payloads directly.

    What stock NetX 0.6 builds (``hdf5.Network.create_input``, ``blocks.process.Input``): a
    LIF(Reset) neuron with the file's decays and threshold and no bias; the block's ``inp`` port
    is not connected to it, so input reaches the neuron's ``a_in`` (as lava-dl's own tests wire
    it), one payload per neuron and step, with no synapse and so no synaptic delay. The file's
    ``weight``/``bias`` (SLAYER's input transform) are read into ``transform_*`` but NetX stores
    them in a ``transform`` dict it never applies, so they do not change what runs.
    """

    name: str
    shape: tuple[int, ...]  # file order: [C, H, W] or [F]
    neuron: Neuron
    transform_weight: int | None = None
    transform_bias: int | None = None
    kind: str = field(default="input", init=False)
    gain: None = field(default=None, init=False)
    bias: None = field(default=None, init=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The payloads arrive one per neuron."""
        return tuple(self.shape)

    @property
    def lava_shape(self) -> tuple[int, ...]:
        """Neurons in Lava's order (``(W, H, C)`` or ``(F,)``)."""
        return tuple(self.shape[::-1])

    @property
    def fan_in(self) -> int:
        """One input payload per neuron."""
        return 1


Layer = Union[InputLayer, ConvLayer, DenseLayer]


def _check_bias_gain(name: str, bias: np.ndarray | None, gain: Gain | None, channels: int, neuron: Neuron) -> None:
    sdnn = isinstance(neuron, SigmaDelta)
    if bias is not None:
        if bias.shape != (channels,):
            raise fail(name, f"bias shape {list(bias.shape)} must be [{channels}] (one per channel)")
        lo, hi = SDNN_BIAS_RANGE if sdnn else BIAS_RANGE
        if bias.size and (bias.min() < lo or bias.max() > hi):
            raise fail(
                name, f"bias outside [{lo}, {hi}] ({'SDNN: bias << 12 in int32' if sdnn else '13-bit bias_mant'})"
            )
        if sdnn and neuron.role == "sigma":
            # NetX hands the bias to Lava's Sigma process, which has none: building the network fails.
            raise fail(name, "a bias on a sigma_output layer is not supported (NetX's Sigma unit has no bias)")
    if gain is not None and sdnn:
        raise fail(name, "per-timestep gains (gain_mant) are only supported on CUBA neurons")
    if gain is not None and gain.mant.shape[1] != channels:
        raise fail(name, f"gain_mant has {gain.mant.shape[1]} channels, the layer has {channels}")


@dataclass
class NetFile:
    """A validated network: input shape ``[C, H, W]`` or ``[F]``, neuron layers in order, metadata.

    ``layers`` are the blocks NetX builds, in order: an :class:`InputLayer` first where the
    file's input layer has neurons, then the conv and dense layers.
    """

    path: str
    input_shape: tuple[int, ...]
    layers: list[Layer]
    metadata: dict[str, Any]

    @property
    def graded_input(self) -> bool:
        """The first synapse takes event counts as graded messages (the file's ``encoding`` is ``counts``)."""
        return self.metadata.get("encoding") == "counts"

    @property
    def readout(self) -> str:
        """How the output is read (``train.models.readout``): ``spikes``, or ``voltage`` (the file's ``readout`` attribute)."""
        return self.metadata.get("readout") or "spikes"

    def __post_init__(self) -> None:
        if not self.layers:
            raise RuntimeConfigError(f"{self.path}: no neuron layers")
        if self.readout not in ("spikes", "voltage"):
            raise RuntimeConfigError(f"{self.path}: unknown readout {self.readout!r} (spikes or voltage)")
        if self.graded_input and isinstance(self.layers[0], InputLayer):
            raise RuntimeConfigError(
                f"{self.path}: count input goes to the first synapse; this file starts with an input layer"
            )
        if self.readout == "voltage" and not isinstance(self.layers[-1].neuron, Cuba):
            raise RuntimeConfigError(f"{self.path}: a voltage readout needs a CUBA output layer")
        shape: tuple[int, ...] = tuple(self.input_shape)
        for layer in self.layers:
            if tuple(layer.input_shape) != shape:
                raise RuntimeConfigError(
                    f"{self.path}: layer {layer.name} expects input {list(layer.input_shape)}, "
                    f"the layer before gives {list(shape)}"
                )
            shape = tuple(layer.shape)
        t = self.metadata.get("timesteps")
        for layer in self.layers:
            if layer.gain is not None and layer.gain.mant.shape[0] != t:
                raise RuntimeConfigError(
                    f"{self.path}: layer {layer.name}: gain_mant has "
                    f"{layer.gain.mant.shape[0]} timesteps, the file says timesteps={t}"
                )

    @property
    def sigma_delta(self) -> bool:
        """Whether the layers are sigma-delta units (the reader refuses files that mix them with CUBA)."""
        return isinstance(self.layers[0].neuron, SigmaDelta)

    @property
    def resets(self) -> bool:
        """Whether NetX resets the neurons between samples (``reset_interval``): not for sigma-delta."""
        return not self.sigma_delta

    @property
    def input_neurons(self) -> bool:
        """Whether the first block is NetX's ``Input`` (payloads go to its neurons' ``a_in``)."""
        return isinstance(self.layers[0], InputLayer)

    @property
    def timesteps(self) -> int | None:
        """Timesteps per sample recorded at export (None if the file does not say)."""
        return self.metadata.get("timesteps")

    @property
    def layer_names(self) -> list[str]:
        """Names as the runtime reports them: ``'<k>:input'``, ``'<k>:conv'``, ``'<k>:dense'``."""
        return [f"{k}:{layer.kind}" for k, layer in enumerate(self.layers)]
