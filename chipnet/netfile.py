"""Reading an exported NetX HDF5 file: the one reader, defensive, into :mod:`chipnet.netmodel`'s plain data.

``read_net(path)`` checks everything stock NetX and our runtime rely on before anything runs
(groups, datasets, dtypes, shapes between layers, weight and neuron ranges) and returns a
:class:`NetFile`: neuron layers (:class:`ConvLayer`, :class:`DenseLayer`) with their
:class:`Cuba` parameters, optional per-timestep gains, and the file's JSON attributes. Any
violation is a :class:`RuntimeConfigError` naming the file, the layer and the problem.

The data model (:class:`NetFile`, the layer classes) lives in :mod:`chipnet.netmodel`; the
writer is :mod:`chipnet.netwriter`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from chipnet.chip import LOIHI_WEIGHT_RANGE
from chipnet.errors import RuntimeConfigError
from chipnet.netmodel import (
    GAIN_EXP,
    GAIN_MANT,
    LAYERS,
    ConvLayer,
    Cuba,
    DenseLayer,
    Gain,
    InputLayer,
    Layer,
    NetFile,
    SigmaDelta,
    fail,
)

MAX_ELEMENTS = 1 << 28  # refuse datasets that would need gigabytes before looking at their values


def _netx_utils() -> Any:
    """lava-dl's ``lava/lib/dl/netx/utils.py`` (h5py and numpy only), loaded without its package.

    ``import lava.lib.dl.netx.utils`` runs ``lava.lib.dl.netx.__init__``, which builds NetX's
    blocks and with them loads Lava's runtime; reading a file (export, the emulator) must not.
    """
    import lava.lib.dl

    name = "chipnet._netx_utils"
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
    # Imported here: reading a file with conv layers only needs no Lava at all.
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

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
        raise fail(layer, f"missing dataset '{key}'")
    ds = group[key]
    if not isinstance(ds, h5py.Dataset):
        raise fail(layer, f"'{key}' is a group, expected a dataset")
    if ds.dtype.kind not in kinds:
        raise fail(layer, f"'{key}' has dtype {ds.dtype}, expected a numeric dataset")
    if ds.size is None or ds.size > max_elements:
        limit = "must be one value" if max_elements == 1 else f"may have at most {max_elements} elements"
        raise fail(layer, f"'{key}' {limit}, it has {ds.size}")
    value = np.asarray(ds[()])
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise fail(layer, f"'{key}' holds NaN or infinite values")
    return value


def _ints(group: h5py.Group, key: str, layer: str, max_elements: int = MAX_ELEMENTS, kinds: str = "iuf") -> np.ndarray:
    """A dataset whose values must all be integers (integer or integer-valued float dtype)."""
    value = _array(group, key, layer, kinds=kinds, max_elements=max_elements)
    if value.dtype.kind == "f":
        if np.any(value != np.round(value)):
            raise fail(layer, f"'{key}' holds non-integer values")
        if value.size and np.abs(value).max() >= 2.0**62:
            raise fail(layer, f"'{key}' holds values too large for an integer register")
    return value.astype(np.int64)


def _scalar(group: h5py.Group, key: str, layer: str, kinds: str = "iuf") -> int:
    value = _ints(group, key, layer, max_elements=1, kinds=kinds)
    if value.size != 1:
        raise fail(layer, f"'{key}' must be a single value, got shape {list(value.shape)}")
    return int(value.reshape(()))


def _pair(group: h5py.Group, key: str, layer: str) -> tuple[int, int]:
    """A scalar or a 2-vector in the file's ``(H, W)`` order."""
    value = _ints(group, key, layer, max_elements=2)
    if value.size == 1:
        return int(value.reshape(())), int(value.reshape(()))
    if value.shape != (2,):
        raise fail(layer, f"'{key}' must be a scalar or 2 values, got shape {list(value.shape)}")
    return int(value[0]), int(value[1])


def _text(group: h5py.Group, key: str, layer: str) -> str:
    """A string dataset as NetX reads it (first element of a 1-vector, or a scalar)."""
    if key not in group or not isinstance(group[key], h5py.Dataset):
        raise fail(layer, f"missing dataset '{key}'")
    ds = group[key]
    if ds.dtype.kind not in "SOU" or ds.size is None or ds.size != 1:
        raise fail(layer, f"'{key}' must be one string, got dtype {ds.dtype} shape {list(ds.shape or ())}")
    value = ds[()]
    value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise fail(layer, f"'{key}' is not ASCII text") from None
    if not isinstance(value, str):
        raise fail(layer, f"'{key}' must be a string")
    return value


def _shape(group: h5py.Group, layer: str) -> tuple[int, ...]:
    value = _ints(group, "shape", layer, max_elements=8)
    if value.ndim != 1 or value.size == 0 or value.min() < 1 or value.max() > 1 << 20:
        raise fail(layer, f"'shape' must be positive sizes, got {value.tolist()}")
    return tuple(int(v) for v in value)


def _decay(neuron: h5py.Group, key: str, layer: str, channels: int) -> int | np.ndarray:
    """A decay: one value, or one per channel (broadcast by Lava over the neuron's last, channel axis)."""
    value = _ints(neuron, key, layer, max_elements=1 << 20)
    if value.size == 1:
        return int(value.reshape(()))
    if value.size != channels:
        raise fail(layer, f"'{key}' has {value.size} values; expected one, or one per channel ({channels})")
    return value.reshape(-1)


def _neuron(group: h5py.Group, layer: str, channels: int, input_block: bool = False) -> Cuba | SigmaDelta:
    if "neuron" not in group or not isinstance(group["neuron"], h5py.Group):
        raise fail(layer, "missing 'neuron' group")
    neuron = group["neuron"]
    kind = _text(neuron, "type", layer)
    if kind == "SDNN":
        return _sigma_delta(neuron, layer, input_block)
    if kind not in ("CUBA", "LOIHI"):
        raise fail(layer, f"neuron type {kind!r} is not supported (expected CUBA or SDNN)")
    if "messageBits" in neuron and _scalar(neuron, "messageBits", layer) != 0:
        raise fail(layer, "graded spikes (messageBits > 0) are not supported on CUBA neurons")
    if "gradedSpike" in neuron and _scalar(neuron, "gradedSpike", layer, kinds="iufb") != 0:
        # NetX 0.6 ignores gradedSpike for CUBA and sends binary spikes: what runs would not be what was trained.
        raise fail(layer, "graded spikes (gradedSpike) are not supported on CUBA neurons (NetX sends binary spikes)")
    ref = _scalar(neuron, "refDelay", layer) if "refDelay" in neuron else 1
    return Cuba(
        layer,
        _decay(neuron, "iDecay", layer, channels),
        _decay(neuron, "vDecay", layer, channels),
        _scalar(neuron, "vThMant", layer),
        ref,
    )


def _sigma_delta(neuron: h5py.Group, layer: str, input_block: bool) -> SigmaDelta:
    """An ``SDNN`` neuron as NetX 0.6's ``get_neuron_params`` maps it (Delta, Sigma or SigmaDelta)."""
    if "activation" in neuron:
        # NetX ignores the name and builds Lava's default ReLU: another activation would not be what was trained.
        activation = _text(neuron, "activation", layer)
        if activation != "relu":
            raise fail(layer, f"sigma-delta activation {activation!r} is not supported (NetX runs ReLU only)")
    bits = _scalar(neuron, "messageBits", layer) if "messageBits" in neuron else 16
    if bits == 0:
        # NetX would declare the next synapse's input unary and Lava would cast the graded messages to 0/1.
        raise fail(layer, "messageBits = 0 on a sigma-delta neuron is not supported (its messages are graded)")
    sigma_output = "sigma_output" in neuron and not input_block  # NetX tests the key's presence, not its value
    if input_block:
        role = "delta"
    else:
        role = "sigma" if sigma_output else "sigma_delta"
    vth = _scalar(neuron, "vThMant", layer) if role != "sigma" else 0  # the sigma unit has no threshold
    return SigmaDelta(layer, vth, role, bits)


def _conv_weight_shape(g: h5py.Group, name: str) -> tuple[int, ...]:
    """The conv weight's shape as 4-D: lava-dl writes ``[Cout, Cin/groups, kh, kw]`` or with a trailing 1."""
    ds = g.get("weight")
    wshape = tuple(int(v) for v in (ds.shape or ())) if isinstance(ds, h5py.Dataset) else ()
    return wshape[:4] if len(wshape) == 5 and wshape[4] == 1 else wshape


def _weights(group: h5py.Group, layer: str, shape: tuple[int, ...], trailing_one: bool = False) -> np.ndarray:
    """The weight dataset, checked for its expected shape before its values are read."""
    if "weight" not in group or not isinstance(group["weight"], h5py.Dataset):
        raise fail(layer, "missing dataset 'weight'")
    stored = tuple(group["weight"].shape or ())
    if stored != shape and not (trailing_one and stored == (*shape, 1)):  # conv kernels: SLAYER's trailing axis
        raise fail(layer, f"weight shape {list(stored)} must be {list(shape)}")
    w = _ints(group, "weight", layer).reshape(shape)
    lo, hi = LOIHI_WEIGHT_RANGE
    if w.size and (w.min() < lo or w.max() > hi):
        raise fail(
            layer,
            f"weights must be integers in [{lo}, {hi}] (Loihi's 8-bit mantissa and sign), found [{w.min()}, {w.max()}]",
        )
    return w


def _extras(group: h5py.Group, layer: str, channels: int) -> tuple[np.ndarray | None, Gain | None]:
    for key in ("delay", "weight_rec"):
        if key in group:
            raise fail(layer, f"'{key}' (synaptic delays / recurrence) is not supported")
    bias = None
    if "bias" in group:
        bias = _ints(group, "bias", layer, max_elements=1 << 20).reshape(-1)
    return bias, read_gain(group, layer)


def read_gain(group: h5py.Group, layer: str) -> Gain | None:
    """A layer group's per-timestep gain (``gain_mant``/``gain_exp``, docs/netx-format.md), or None."""
    if (GAIN_MANT in group) != (GAIN_EXP in group):
        raise fail(layer, f"{GAIN_MANT} and {GAIN_EXP} must both be present or both absent")
    if GAIN_MANT not in group:
        return None
    if group[GAIN_MANT].dtype.kind not in "iu":
        raise fail(layer, f"{GAIN_MANT} has dtype {group[GAIN_MANT].dtype}, expected integers")
    return Gain(layer, _ints(group, GAIN_MANT, layer, max_elements=1 << 24), _scalar(group, GAIN_EXP, layer))


def _input_transform(g: h5py.Group, name: str, key: str) -> int | None:
    """The input block's ``weight``/``bias`` (one value each, as NetX's ``int(...)`` requires)."""
    if key not in g:
        return None
    value = _ints(g, key, name, max_elements=1)
    if value.size != 1:
        raise fail(name, f"input '{key}' must be one value, got shape {list(value.shape)}")
    return int(value.reshape(()))


def _layer_groups(h: h5py.File) -> h5py.Group:
    """The ``layer`` group, its members checked to be groups named ``0..n-1``."""
    if LAYERS not in h or not isinstance(h[LAYERS], h5py.Group):
        raise RuntimeConfigError("not a NetX network (no 'layer' group)")
    groups = h[LAYERS]
    names = set(groups.keys())
    if names != {str(i) for i in range(len(names))}:
        raise RuntimeConfigError(f"layer groups must be named 0..{len(names) - 1}, found {sorted(names)}")
    if not names:
        raise RuntimeConfigError("the 'layer' group is empty")
    for name in names:
        if not isinstance(groups[name], h5py.Group):
            raise fail(name, "is not a group")
    return groups


def _read_input(g: h5py.Group) -> tuple[tuple[int, ...], InputLayer | None]:
    """Layer 0 of type ``input``: the network's input shape, and its input block where it has neurons."""
    input_shape = _shape(g, "0")
    if len(input_shape) not in (1, 3):
        raise fail("0", f"input shape must be [C, H, W] or [F], got {list(input_shape)}")
    if "neuron" not in g:
        return input_shape, None
    block = InputLayer(
        "0",
        input_shape,
        _neuron(g, "0", input_shape[0], input_block=True),
        _input_transform(g, "0", "weight"),
        _input_transform(g, "0", "bias"),
    )
    return input_shape, block


def _dense_input_shape(g: h5py.Group) -> tuple[int, ...]:
    """The input shape of a net without input layer: NetX sizes it from the first dense weight (dense-only nets)."""
    ds = g.get("weight")
    wshape = tuple(int(v) for v in (ds.shape or ())) if isinstance(ds, h5py.Dataset) else ()
    if len(wshape) != 2 or min(wshape) < 1:
        raise fail("0", f"dense weight shape {list(wshape)} must be [out, in]")
    return (wshape[1],)


def _check_flatten(g: h5py.Group, name: str, shape: tuple[int, ...], flattened: bool) -> None:
    """A ``flatten`` layer (no block in NetX) between a ``[C, H, W]`` layer and a dense one."""
    if len(shape) != 3 or flattened:
        raise fail(name, "flatten must follow a conv layer or a [C, H, W] input")
    if "shape" in g and int(np.prod(_shape(g, name))) != int(np.prod(shape)):
        raise fail(name, f"flatten shape {list(_shape(g, name))} does not hold {list(shape)}")


def _read_conv(g: h5py.Group, name: str, shape: tuple[int, ...], flattened: bool) -> ConvLayer:
    """A ``conv`` layer on the ``shape`` the layer before gives."""
    if len(shape) != 3 or flattened:
        raise fail(name, f"conv needs a [C, H, W] input, the layer before gives {list(shape)}")
    out = _shape(g, name)
    if len(out) != 3:
        raise fail(name, f"conv shape must be [C, H, W], got {list(out)}")
    groups_n = _scalar(g, "groups", name) if "groups" in g else 1
    stride, padding, dilation = (_pair(g, k, name) for k in ("stride", "padding", "dilation"))
    if groups_n < 1 or shape[0] % groups_n:
        raise fail(name, f"groups={groups_n} does not divide {shape[0]} input channels")
    wshape = _conv_weight_shape(g, name)
    if len(wshape) != 4 or wshape[:2] != (out[0], shape[0] // groups_n) or min(wshape) < 1:
        raise fail(
            name,
            f"conv weight shape {list(wshape)} must be [{out[0]}, {shape[0] // groups_n}, kh, kw]"
            " (or with a trailing 1)",
        )
    weight = _weights(g, name, wshape, trailing_one=True)
    bias, gain = _extras(g, name, out[0])
    return ConvLayer(
        name, shape, out, weight, stride, padding, dilation, groups_n, _neuron(g, name, out[0]), bias, gain
    )


def _read_dense(g: h5py.Group, name: str, shape: tuple[int, ...], flattened: bool) -> DenseLayer:
    """A ``dense`` layer on the ``shape`` the layer before gives (a ``[C, H, W]`` one through a flatten)."""
    if len(shape) == 3 and not flattened:
        raise fail(name, "dense after a conv layer needs a flatten layer in between")
    out = _shape(g, name)
    n_out, n_in = int(np.prod(out)), int(np.prod(shape))
    weight = _weights(g, name, (n_out, n_in))
    if not np.any(weight):
        raise fail(name, "all weights are zero (NetX cannot size the synapse)")
    chip, exp = chip_dense_weights(weight)
    bias, gain = _extras(g, name, n_out)
    return DenseLayer(name, shape, (n_out,), chip, exp, _neuron(g, name, n_out), bias, gain, weight)


def _refuse_dense_rec(g: h5py.Group, name: str, shape: tuple[int, ...], flattened: bool) -> Layer:
    # NetX 0.6 builds RecurrentDense, but its process has no model for Lava's simulator to run.
    raise fail(
        name,
        "recurrent dense layers (dense_rec) are not supported: NetX 0.6's RecurrentDense "
        "block has no process model to run",
    )


# The neuron layers after layer 0, by their group's ``type`` (``input`` is layer 0's, ``flatten`` makes no layer).
READERS = {"conv": _read_conv, "dense": _read_dense, "dense_rec": _refuse_dense_rec}


def _read_layers(h: h5py.File) -> tuple[tuple[int, ...], list[Layer]]:
    """The blocks NetX's ``hdf5.Network`` builds from the file, checked as NetX needs them."""
    groups = _layer_groups(h)
    layers: list[Layer] = []
    first_kind = _text(groups["0"], "type", "0")
    if first_kind == "input":
        input_shape, block = _read_input(groups["0"])
        if block is not None:
            layers.append(block)
        start = 1
    elif first_kind == "dense":
        input_shape, start = _dense_input_shape(groups["0"]), 0
    else:
        # NetX cannot infer a conv's input shape without an input layer ("Input shape could not be inferred").
        raise fail("0", f"must be the input layer (type 'input') or a dense layer, found {first_kind!r}")
    shape: tuple[int, ...] = input_shape
    flattened = False
    for i in range(start, len(groups)):
        name = str(i)
        g = groups[name]
        kind = _text(g, "type", name)
        if kind == "input":
            raise fail(name, "only layer 0 may be an input layer")
        if kind == "flatten":
            _check_flatten(g, name, shape, flattened)
            flattened = True
            continue
        if kind not in READERS:
            raise fail(name, f"layer type {kind!r} is not supported (expected conv, flatten or dense)")
        layer = READERS[kind](g, name, shape, flattened)
        layers.append(layer)
        shape, flattened = tuple(layer.shape), False
    if flattened:
        raise RuntimeConfigError("the last layer is a flatten without a dense layer after it")
    if not layers or isinstance(layers[-1], InputLayer):
        raise RuntimeConfigError("no conv or dense layers")
    kinds = {type(layer.neuron) for layer in layers}
    if len(kinds) > 1:
        # Mixed nets would pass graded messages into CUBA synapses and binary spikes into sigma units
        # (NetX's message bits per block): neither is emulated.
        first_sd = next(layer.name for layer in layers if isinstance(layer.neuron, SigmaDelta))
        raise RuntimeConfigError(
            f"layer {first_sd}: networks that mix CUBA and sigma-delta (SDNN) neurons are not supported"
        )
    return input_shape, layers


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Only the file's attributes (timesteps, classes, readout, encoding, ...), without validating its layers."""
    try:
        with h5py.File(path, "r") as h:
            return _read_metadata(h)
    except OSError as e:
        raise RuntimeConfigError(f"{path}: not a readable HDF5 file ({e})") from None
    except RuntimeConfigError as e:
        raise RuntimeConfigError(f"{path}: {e}") from None


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
    if "input_shape" in meta and (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
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
        raise RuntimeConfigError(
            f"{path}: attribute input_shape {meta['input_shape']} differs from layer 0 shape {list(input_shape)}"
        )
    classes = meta.get("classes")
    if classes is not None and len(classes) != int(np.prod(layers[-1].shape)):
        raise RuntimeConfigError(
            f"{path}: {len(classes)} classes but the output layer has {int(np.prod(layers[-1].shape))} neurons"
        )
    return net
