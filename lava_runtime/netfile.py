"""An exported NetX HDF5 file as plain data: read, validated, with the weights the chip holds.

``read_net(path)`` checks everything stock NetX and our runtime rely on before anything runs
(groups, datasets, dtypes, shapes between layers, weight and neuron ranges) and returns a
:class:`NetFile`: neuron layers (:class:`ConvLayer`, :class:`DenseLayer`) with their
:class:`Cuba` parameters, optional per-timestep gains, and the file's JSON attributes. Any
violation is a :class:`RuntimeConfigError` naming the file, the layer and the problem.

Weights are stored as the Lava fixed-point models use them: conv kernels as NetX passes them
(the file's integers; Lava's flipped-kernel convolution equals torch's correlation with the
file's ``[Cout, Cin/groups, kh, kw]`` kernel), dense matrices after NetX's
``optimize_weight_bits`` and the Dense model's clip/truncate, with their shared exponent.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import h5py
import numpy as np
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

from lava_runtime.errors import RuntimeConfigError
from train.chip import BIAS_RANGE, DECAY_UNITY, GAIN_EXP_RANGE, GAIN_MANT_RANGE, LOIHI_WEIGHT_RANGE, VTH_MANT_FILE_MAX

MAX_ELEMENTS = 1 << 28  # refuse datasets that would need gigabytes before looking at their values


def _fail(layer: str, problem: str) -> RuntimeConfigError:
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
                raise _fail(self.layer, f"neuron {key}={shown} outside [0, {DECAY_UNITY}] (12-bit decay)")
        if not 0 <= self.vth_mant <= VTH_MANT_FILE_MAX:
            raise _fail(self.layer, f"neuron vThMant={self.vth_mant} outside [0, {VTH_MANT_FILE_MAX}]")
        if self.ref_delay < 0:
            raise _fail(self.layer, f"neuron refDelay={self.ref_delay} is negative")


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
            raise _fail(self.layer, f"gain_mant must be [T, C], got shape {list(self.mant.shape)}")
        lo, hi = GAIN_MANT_RANGE
        if self.mant.size and (self.mant.min() < lo or self.mant.max() > hi):
            raise _fail(self.layer, f"gain_mant values must lie in [{lo}, {hi}], found "
                                    f"[{self.mant.min()}, {self.mant.max()}]")
        if not GAIN_EXP_RANGE[0] <= self.exp <= GAIN_EXP_RANGE[1]:
            raise _fail(self.layer, f"gain_exp={self.exp} outside {list(GAIN_EXP_RANGE)}")


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
    neuron: Cuba
    bias: np.ndarray | None = None  # int64 [Cout]
    gain: Gain | None = None
    kind: str = field(default="conv", init=False)

    def __post_init__(self) -> None:
        cin, h, w = self.input_shape
        if self.weight.ndim != 4:
            raise _fail(self.name, f"conv weight must be [Cout, Cin/groups, kh, kw], got shape {list(self.weight.shape)}")
        cout, cin_g, kh, kw = self.weight.shape
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
            raise _fail(self.name, f"stride {self.stride} and dilation {self.dilation} must be >= 1, "
                                   f"padding {self.padding} >= 0")
        if self.groups < 1 or cin % self.groups or cout % self.groups or cin_g * self.groups != cin:
            raise _fail(self.name, f"weight {list(self.weight.shape)} with groups={self.groups} does not fit "
                                   f"{cin} input channels")
        out_hw = [
            (size + 2 * pad - dil * (k - 1) - 1) // st + 1
            for size, pad, dil, k, st in zip((h, w), self.padding, self.dilation, (kh, kw), self.stride)
        ]
        expected = (cout, *out_hw)
        if min(out_hw) < 1 or tuple(self.shape) != expected:
            raise _fail(self.name, f"shape {list(self.shape)} does not match the convolution of input "
                                   f"{list(self.input_shape)}, which gives {list(expected)}")
        _check_bias_gain(self.name, self.bias, self.gain, cout)

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
    neuron: Cuba
    bias: np.ndarray | None = None  # int64 [out]
    gain: Gain | None = None
    file_weight: np.ndarray | None = None  # the file's integers, whose nonzeros are Lava's synapses
    kind: str = field(default="dense", init=False)

    def __post_init__(self) -> None:
        n_in = int(np.prod(self.input_shape))
        if self.weight.ndim != 2 or self.weight.shape != (self.shape[0], n_in):
            raise _fail(self.name, f"dense weight {list(self.weight.shape)} must be [{self.shape[0]}, {n_in}] "
                                   f"(out, flattened input {list(self.input_shape)})")
        if self.weight_exp > 0 or self.weight_exp < -8:
            raise _fail(self.name, f"weight exponent {self.weight_exp} outside [-8, 0]")
        _check_bias_gain(self.name, self.bias, self.gain, self.shape[0])
        if self.file_weight is not None and self.file_weight.shape != self.weight.shape:
            raise _fail(self.name, f"file weight {list(self.file_weight.shape)} differs from {list(self.weight.shape)}")

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
    neuron: Cuba
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


def _check_bias_gain(name: str, bias: np.ndarray | None, gain: Gain | None, channels: int) -> None:
    if bias is not None:
        if bias.shape != (channels,):
            raise _fail(name, f"bias shape {list(bias.shape)} must be [{channels}] (one per channel)")
        if bias.size and (bias.min() < BIAS_RANGE[0] or bias.max() > BIAS_RANGE[1]):
            raise _fail(name, f"bias outside the 13-bit range {list(BIAS_RANGE)}")
    if gain is not None and gain.mant.shape[1] != channels:
        raise _fail(name, f"gain_mant has {gain.mant.shape[1]} channels, the layer has {channels}")


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

    def __post_init__(self) -> None:
        if not self.layers:
            raise RuntimeConfigError(f"{self.path}: no neuron layers")
        shape: tuple[int, ...] = tuple(self.input_shape)
        for layer in self.layers:
            if tuple(layer.input_shape) != shape:
                raise RuntimeConfigError(f"{self.path}: layer {layer.name} expects input {list(layer.input_shape)}, "
                                         f"the layer before gives {list(shape)}")
            shape = tuple(layer.shape)
        t = self.metadata.get("timesteps")
        for layer in self.layers:
            if layer.gain is not None and layer.gain.mant.shape[0] != t:
                raise RuntimeConfigError(f"{self.path}: layer {layer.name}: gain_mant has "
                                         f"{layer.gain.mant.shape[0]} timesteps, the file says timesteps={t}")

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


def _netx_utils() -> Any:
    """lava-dl's ``lava/lib/dl/netx/utils.py`` (h5py and numpy only), loaded without its package.

    ``import lava.lib.dl.netx.utils`` runs ``lava.lib.dl.netx.__init__``, which builds NetX's
    blocks and with them loads Lava's runtime; reading a file (export, the emulator) must not.
    """
    import lava.lib.dl

    name = "lava_runtime._netx_utils"
    if name not in sys.modules:
        path = Path(lava.lib.dl.__path__[0]) / "netx" / "utils.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def chip_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense integer weights → (matrix, exponent) exactly as NetX and Lava's Dense model hold them."""
    # The same library functions the simulator runs, so quirks (clipping, truncation) match bit for bit.
    with contextlib.redirect_stdout(io.StringIO()):  # NetX prints clipping warnings
        w, num_bits, exp, _ = _netx_utils().optimize_weight_bits(weight.astype(int))
    sign_mode = determine_sign_mode(w)
    w = clip_weights(w, sign_mode, num_bits=8)
    w = truncate_weights(w, sign_mode, num_bits)
    return w.astype(np.int64), int(exp)


# --- reading -------------------------------------------------------------------------------


def _array(group: h5py.Group, key: str, layer: str, kinds: str = "iuf", max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """A numeric dataset's values, refusing wrong kinds and absurd sizes before reading."""
    if key not in group:
        raise _fail(layer, f"missing dataset '{key}'")
    ds = group[key]
    if not isinstance(ds, h5py.Dataset):
        raise _fail(layer, f"'{key}' is a group, expected a dataset")
    if ds.dtype.kind not in kinds:
        raise _fail(layer, f"'{key}' has dtype {ds.dtype}, expected a numeric dataset")
    if ds.size is None or ds.size > max_elements:
        limit = "must be one value" if max_elements == 1 else f"may have at most {max_elements} elements"
        raise _fail(layer, f"'{key}' {limit}, it has {ds.size}")
    value = np.asarray(ds[()])
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise _fail(layer, f"'{key}' holds NaN or infinite values")
    return value


def _ints(group: h5py.Group, key: str, layer: str, max_elements: int = MAX_ELEMENTS, kinds: str = "iuf") -> np.ndarray:
    """A dataset whose values must all be integers (integer or integer-valued float dtype)."""
    value = _array(group, key, layer, kinds=kinds, max_elements=max_elements)
    if value.dtype.kind == "f":
        if np.any(value != np.round(value)):
            raise _fail(layer, f"'{key}' holds non-integer values")
        if value.size and np.abs(value).max() >= 2.0**62:
            raise _fail(layer, f"'{key}' holds values too large for an integer register")
    return value.astype(np.int64)


def _scalar(group: h5py.Group, key: str, layer: str, kinds: str = "iuf") -> int:
    value = _ints(group, key, layer, max_elements=1, kinds=kinds)
    if value.size != 1:
        raise _fail(layer, f"'{key}' must be a single value, got shape {list(value.shape)}")
    return int(value.reshape(()))


def _pair(group: h5py.Group, key: str, layer: str) -> tuple[int, int]:
    """A scalar or a 2-vector in the file's ``(H, W)`` order."""
    value = _ints(group, key, layer, max_elements=2)
    if value.size == 1:
        return int(value.reshape(())), int(value.reshape(()))
    if value.shape != (2,):
        raise _fail(layer, f"'{key}' must be a scalar or 2 values, got shape {list(value.shape)}")
    return int(value[0]), int(value[1])


def _text(group: h5py.Group, key: str, layer: str) -> str:
    """A string dataset as NetX reads it (first element of a 1-vector, or a scalar)."""
    if key not in group or not isinstance(group[key], h5py.Dataset):
        raise _fail(layer, f"missing dataset '{key}'")
    ds = group[key]
    if ds.dtype.kind not in "SOU" or ds.size is None or ds.size != 1:
        raise _fail(layer, f"'{key}' must be one string, got dtype {ds.dtype} shape {list(ds.shape or ())}")
    value = ds[()]
    value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise _fail(layer, f"'{key}' is not ASCII text") from None
    if not isinstance(value, str):
        raise _fail(layer, f"'{key}' must be a string")
    return value


def _shape(group: h5py.Group, layer: str) -> tuple[int, ...]:
    value = _ints(group, "shape", layer, max_elements=8)
    if value.ndim != 1 or value.size == 0 or value.min() < 1 or value.max() > 1 << 20:
        raise _fail(layer, f"'shape' must be positive sizes, got {value.tolist()}")
    return tuple(int(v) for v in value)


def _decay(neuron: h5py.Group, key: str, layer: str, channels: int) -> int | np.ndarray:
    """A decay: one value, or one per channel (broadcast by Lava over the neuron's last, channel axis)."""
    value = _ints(neuron, key, layer, max_elements=1 << 20)
    if value.size == 1:
        return int(value.reshape(()))
    if value.size != channels:
        raise _fail(layer, f"'{key}' has {value.size} values; expected one, or one per channel ({channels})")
    return value.reshape(-1)


def _neuron(group: h5py.Group, layer: str, channels: int) -> Cuba:
    if "neuron" not in group or not isinstance(group["neuron"], h5py.Group):
        raise _fail(layer, "missing 'neuron' group")
    neuron = group["neuron"]
    kind = _text(neuron, "type", layer)
    if kind == "SDNN":
        # Not emulated yet, and NetX 0.6 ignores reset_interval for sigma-delta neurons ("Reset is not
        # supported"), so back-to-back samples would share state: the runtime's reset contract breaks.
        raise _fail(layer, "neuron type 'SDNN' is not supported yet (sigma-delta: no emulation, and NetX 0.6 "
                           "cannot reset it between samples); expected CUBA")
    if kind not in ("CUBA", "LOIHI"):
        raise _fail(layer, f"neuron type {kind!r} is not supported (expected CUBA)")
    if "messageBits" in neuron and _scalar(neuron, "messageBits", layer) != 0:
        raise _fail(layer, "graded spikes (messageBits > 0) are not supported on CUBA neurons")
    if "gradedSpike" in neuron and _scalar(neuron, "gradedSpike", layer, kinds="iufb") != 0:
        # NetX 0.6 ignores gradedSpike for CUBA and sends binary spikes: what runs would not be what was trained.
        raise _fail(layer, "graded spikes (gradedSpike) are not supported on CUBA neurons (NetX sends binary spikes)")
    ref = _scalar(neuron, "refDelay", layer) if "refDelay" in neuron else 1
    return Cuba(layer, _decay(neuron, "iDecay", layer, channels), _decay(neuron, "vDecay", layer, channels),
                _scalar(neuron, "vThMant", layer), ref)


def _conv_weight_shape(g: h5py.Group, name: str) -> tuple[int, ...]:
    """The conv weight's shape as 4-D: lava-dl writes ``[Cout, Cin/groups, kh, kw]`` or with a trailing 1."""
    ds = g.get("weight")
    wshape = tuple(int(v) for v in (ds.shape or ())) if isinstance(ds, h5py.Dataset) else ()
    return wshape[:4] if len(wshape) == 5 and wshape[4] == 1 else wshape


def _weights(group: h5py.Group, layer: str, shape: tuple[int, ...], trailing_one: bool = False) -> np.ndarray:
    """The weight dataset, checked for its expected shape before its values are read."""
    if "weight" not in group or not isinstance(group["weight"], h5py.Dataset):
        raise _fail(layer, "missing dataset 'weight'")
    stored = tuple(group["weight"].shape or ())
    if stored != shape and not (trailing_one and stored == (*shape, 1)):  # conv kernels: SLAYER's trailing axis
        raise _fail(layer, f"weight shape {list(stored)} must be {list(shape)}")
    w = _ints(group, "weight", layer).reshape(shape)
    lo, hi = LOIHI_WEIGHT_RANGE
    if w.size and (w.min() < lo or w.max() > hi):
        raise _fail(layer, f"weights must be integers in [{lo}, {hi}] (Loihi's 8-bit mantissa and sign), "
                           f"found [{w.min()}, {w.max()}]")
    return w


def _extras(group: h5py.Group, layer: str, channels: int) -> tuple[np.ndarray | None, Gain | None]:
    for key in ("delay", "weight_rec"):
        if key in group:
            raise _fail(layer, f"'{key}' (synaptic delays / recurrence) is not supported")
    bias = None
    if "bias" in group:
        bias = _ints(group, "bias", layer, max_elements=1 << 20).reshape(-1)
    gain = None
    if ("gain_mant" in group) != ("gain_exp" in group):
        raise _fail(layer, "gain_mant and gain_exp must both be present or both absent")
    if "gain_mant" in group:
        if group["gain_mant"].dtype.kind not in "iu":
            raise _fail(layer, f"gain_mant has dtype {group['gain_mant'].dtype}, expected integers")
        gain = Gain(layer, _ints(group, "gain_mant", layer, max_elements=1 << 24), _scalar(group, "gain_exp", layer))
    return bias, gain


def _input_transform(g: h5py.Group, name: str, key: str) -> int | None:
    """The input block's ``weight``/``bias`` (one value each, as NetX's ``int(...)`` requires)."""
    if key not in g:
        return None
    value = _ints(g, key, name, max_elements=1)
    if value.size != 1:
        raise _fail(name, f"input '{key}' must be one value, got shape {list(value.shape)}")
    return int(value.reshape(()))


def _read_layers(h: h5py.File) -> tuple[tuple[int, ...], list[Layer]]:
    """The blocks NetX's ``hdf5.Network`` builds from the file, checked as NetX needs them."""
    if "layer" not in h or not isinstance(h["layer"], h5py.Group):
        raise RuntimeConfigError("not a NetX network (no 'layer' group)")
    groups = h["layer"]
    names = set(groups.keys())
    if names != {str(i) for i in range(len(names))}:
        raise RuntimeConfigError(f"layer groups must be named 0..{len(names) - 1}, found {sorted(names)}")
    if not names:
        raise RuntimeConfigError("the 'layer' group is empty")
    for name in names:
        if not isinstance(groups[name], h5py.Group):
            raise _fail(name, "is not a group")
    layers: list[Layer] = []
    first = groups["0"]
    first_kind = _text(first, "type", "0")
    start = 1
    if first_kind == "input":
        input_shape = _shape(first, "0")
        if len(input_shape) not in (1, 3):
            raise _fail("0", f"input shape must be [C, H, W] or [F], got {list(input_shape)}")
        if "neuron" in first:
            layers.append(InputLayer("0", input_shape, _neuron(first, "0", input_shape[0]),
                                     _input_transform(first, "0", "weight"), _input_transform(first, "0", "bias")))
    elif first_kind == "dense":
        # No input layer: NetX sizes the network's input from the first dense weight (dense-only nets).
        ds = first.get("weight")
        wshape = tuple(int(v) for v in (ds.shape or ())) if isinstance(ds, h5py.Dataset) else ()
        if len(wshape) != 2 or min(wshape) < 1:
            raise _fail("0", f"dense weight shape {list(wshape)} must be [out, in]")
        input_shape = (wshape[1],)
        start = 0
    else:
        # NetX cannot infer a conv's input shape without an input layer ("Input shape could not be inferred").
        raise _fail("0", f"must be the input layer (type 'input') or a dense layer, found {first_kind!r}")
    shape: tuple[int, ...] = input_shape
    flatten = False
    for i in range(start, len(names)):
        name = str(i)
        g = groups[name]
        kind = _text(g, "type", name)
        if kind == "input":
            raise _fail(name, "only layer 0 may be an input layer")
        if kind == "flatten":
            if len(shape) != 3 or flatten:
                raise _fail(name, "flatten must follow a conv layer or a [C, H, W] input")
            if "shape" in g and int(np.prod(_shape(g, name))) != int(np.prod(shape)):
                raise _fail(name, f"flatten shape {list(_shape(g, name))} does not hold {list(shape)}")
            flatten = True
            continue
        if kind == "conv":
            if len(shape) != 3 or flatten:
                raise _fail(name, f"conv needs a [C, H, W] input, the layer before gives {list(shape)}")
            out = _shape(g, name)
            if len(out) != 3:
                raise _fail(name, f"conv shape must be [C, H, W], got {list(out)}")
            groups_n = _scalar(g, "groups", name) if "groups" in g else 1
            stride, padding, dilation = (_pair(g, k, name) for k in ("stride", "padding", "dilation"))
            if groups_n < 1 or shape[0] % groups_n:
                raise _fail(name, f"groups={groups_n} does not divide {shape[0]} input channels")
            wshape = _conv_weight_shape(g, name)
            if len(wshape) != 4 or wshape[:2] != (out[0], shape[0] // groups_n) or min(wshape) < 1:
                raise _fail(name, f"conv weight shape {list(wshape)} must be [{out[0]}, {shape[0] // groups_n}, kh, kw]"
                                  " (or with a trailing 1)")
            weight = _weights(g, name, wshape, trailing_one=True)
            bias, gain = _extras(g, name, out[0])
            layer: Layer = ConvLayer(name, shape, out, weight, stride, padding, dilation, groups_n,
                                     _neuron(g, name, out[0]), bias, gain)
        elif kind == "dense":
            if len(shape) == 3 and not flatten:
                raise _fail(name, "dense after a conv layer needs a flatten layer in between")
            out = _shape(g, name)
            n_out, n_in = int(np.prod(out)), int(np.prod(shape))
            weight = _weights(g, name, (n_out, n_in))
            if not np.any(weight):
                raise _fail(name, "all weights are zero (NetX cannot size the synapse)")
            chip, exp = chip_dense_weights(weight)
            bias, gain = _extras(g, name, n_out)
            layer = DenseLayer(name, shape, (n_out,), chip, exp, _neuron(g, name, n_out), bias, gain, weight)
            flatten = False
        elif kind == "dense_rec":
            # NetX 0.6 builds RecurrentDense, but its process has no model for Lava's simulator to run.
            raise _fail(name, "recurrent dense layers (dense_rec) are not supported: NetX 0.6's RecurrentDense "
                              "block has no process model to run")
        else:
            raise _fail(name, f"layer type {kind!r} is not supported (expected conv, flatten or dense)")
        layers.append(layer)
        shape = tuple(layer.shape)
    if flatten:
        raise RuntimeConfigError("the last layer is a flatten without a dense layer after it")
    if not layers or isinstance(layers[-1], InputLayer):
        raise RuntimeConfigError("no conv or dense layers")
    return input_shape, layers


def _read_metadata(h: h5py.File) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in h.attrs.keys():
        raw = h.attrs[key]
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RuntimeConfigError(f"attribute {key!r} is not UTF-8 text") from None
        if not isinstance(raw, str):
            raise RuntimeConfigError(f"attribute {key!r} is not a JSON string")
        try:
            meta[key] = json.loads(raw)
        except ValueError:
            raise RuntimeConfigError(f"attribute {key!r} is not valid JSON") from None
    t = meta.get("timesteps")
    if "timesteps" in meta and (not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= 1 << 16):
        raise RuntimeConfigError(f"attribute 'timesteps' must be a positive integer, got {t!r}")
    shape = meta.get("input_shape")
    if "input_shape" in meta and (not isinstance(shape, list) or len(shape) != 3
                                  or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise RuntimeConfigError(f"attribute 'input_shape' must be [C, H, W], got {shape!r}")
    classes = meta.get("classes")
    if "classes" in meta and not isinstance(classes, list):
        raise RuntimeConfigError(f"attribute 'classes' must be a list, got {type(classes).__name__}")
    return meta


def read_net(path: str | Path, timeout_s: float | None = 60.0) -> NetFile:
    """Read and validate an exported network; every problem is a ``RuntimeConfigError`` naming the file.

    The HDF5 library can loop forever or crash on a damaged file (fuzzing found such files), which
    no check in this process can prevent, so by default the file is parsed in a forked child that
    is killed after ``timeout_s``; ``None`` parses in this process.
    """
    if timeout_s is None or "fork" not in multiprocessing.get_all_start_methods():
        return _read_net(path)
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_read_in_child, args=(path, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise RuntimeConfigError(f"{path}: reading took longer than {timeout_s:g} s (a damaged HDF5 file?)")
        ok, value = receiver.recv()
    except EOFError:
        raise RuntimeConfigError(f"{path}: the HDF5 library crashed reading it (a damaged file?)") from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if not ok:
        raise RuntimeConfigError(value)
    return value


def _read_in_child(path: str | Path, conn: Any) -> None:
    """Child side of :func:`read_net`: send ``(True, NetFile)`` or ``(False, message)``, then exit at once."""
    try:
        try:
            result: tuple[bool, Any] = (True, _read_net(path))
        except RuntimeConfigError as e:
            result = (False, str(e))
        except BaseException as e:  # anything else must still reach the parent as a clear error
            result = (False, f"{path}: cannot read it ({type(e).__name__}: {e})")
        conn.send(result)
        conn.close()
    finally:
        os._exit(0)  # skip the parent's atexit handlers (torch, Lava) in the forked copy


def _read_net(path: str | Path) -> NetFile:
    """:func:`read_net` in this process."""
    path = Path(path)
    if not path.exists():
        raise RuntimeConfigError(f"{path}: network file not found")
    try:
        with h5py.File(path, "r") as h:
            meta = _read_metadata(h)
            input_shape, layers = _read_layers(h)
        net = NetFile(str(path), input_shape, layers, meta)
    except RuntimeConfigError as e:
        msg = str(e)
        raise RuntimeConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError, OverflowError) as e:
        # h5py surfaces damaged files as any of these; none of them may escape as a crash.
        raise RuntimeConfigError(f"{path}: not a readable NetX HDF5 file ({type(e).__name__}: {e})") from None
    if "input_shape" in meta and tuple(meta["input_shape"]) != tuple(input_shape):
        raise RuntimeConfigError(f"{path}: attribute input_shape {meta['input_shape']} differs from layer 0 "
                                 f"shape {list(input_shape)}")
    classes = meta.get("classes")
    if classes is not None and len(classes) != int(np.prod(layers[-1].shape)):
        raise RuntimeConfigError(f"{path}: {len(classes)} classes but the output layer has "
                                 f"{int(np.prod(layers[-1].shape))} neurons")
    return net
