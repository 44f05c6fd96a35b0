"""Writing a NetX HDF5 file: the one writer, beside the one reader (:mod:`chipnet.netfile`).

Stock NetX (``lava.lib.dl.netx.hdf5.Network``) reads a ``layer`` group holding numbered layer
groups (``0`` the input, then one per block) and ignores the file's attributes; our runtime reads
the attributes as JSON metadata and a conv layer's ``gain_mant``/``gain_exp`` as its per-timestep
gain (docs/netx-format.md). SLAYER's own blocks write their groups with lava-dl's ``export_hdf5``;
what this project adds (the input layer, folded attention convs) is written here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from chipnet.atomic import atomic_write
from chipnet.errors import ExportError
from chipnet.netmodel import GAIN_EXP, GAIN_MANT, LAYERS


class Exportable(Protocol):
    """What :func:`write_netx` writes: an object that fills an open HDF5 file with its layers."""

    def export_hdf5(self, handle: h5py.Group) -> None: ...


def write_netx(net: Exportable, path: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``net`` and ``metadata`` (timesteps, input shape, class names, ...) to ``path`` atomically.

    ``metadata`` goes to the file's attributes, each value as JSON.
    """
    if not hasattr(net, "export_hdf5"):
        raise ExportError(f"{type(net).__name__} has no export_hdf5(); cannot write {path}")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h:
        net.export_hdf5(h)
        for key, value in metadata.items():
            h.attrs[key] = json.dumps(value)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _kind(group: h5py.Group, kind: str) -> None:
    group.create_dataset("type", (1,), "S10", [kind.encode()])


def write_input_layer(handle: h5py.Group, shape: tuple[int, ...]) -> h5py.Group:
    """Create the ``layer`` group with its input layer ``0`` of ``shape`` (``[C, H, W]`` or ``[F]``)."""
    group = handle.create_group(LAYERS).create_group("0")
    _kind(group, "input")
    group.create_dataset("shape", data=np.array(shape))
    return handle[LAYERS]


def write_conv_layer(
    group: h5py.Group,
    *,
    shape: tuple[int, int, int],
    in_channels: int,
    out_channels: int,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    weight: np.ndarray,
    neuron: Mapping[str, Any],
    bias: np.ndarray | None = None,
    gain: tuple[np.ndarray, int] | None = None,
) -> None:
    """A NetX ``conv`` layer as SLAYER writes one, plus an optional bias and per-timestep gain.

    ``neuron`` holds the neuron group's datasets (SLAYER's ``device_params``: ``type``, ``iDecay``,
    ``vDecay``, ``vThMant``, ...); ``gain`` is ``(mantissa [T, C], exponent)``.
    """
    _kind(group, "conv")
    group.create_dataset("shape", data=np.array(shape))
    group.create_dataset("inChannels", data=in_channels)
    group.create_dataset("outChannels", data=out_channels)
    group.create_dataset("kernelSize", data=np.array(kernel_size))
    group.create_dataset("stride", data=np.array(stride))
    group.create_dataset("padding", data=np.array(padding))
    group.create_dataset("dilation", data=np.array(dilation))
    group.create_dataset("groups", data=groups)
    group.create_dataset("weight", data=weight)
    if bias is not None:
        group.create_dataset("bias", data=bias)
    for key, value in neuron.items():
        group.create_dataset(f"neuron/{key}", data=value)
    if gain is not None:
        mant, exp = gain
        group.create_dataset(GAIN_MANT, data=mant)
        group.create_dataset(GAIN_EXP, data=np.int32(exp))
