"""Write a trained SLAYER network as a NetX HDF5 file that stock ``netx.hdf5.Network`` loads."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import h5py
import torch

from train.atomic import atomic_write
from train.errors import SmaLavaError


class ExportError(SmaLavaError):
    """The model cannot be exported as asked; the message names the layer and the limit."""


def write_netx(net: torch.nn.Module, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``net`` (which must have ``export_hdf5``) and ``metadata`` to ``path`` atomically.

    ``metadata`` (timesteps, input shape, class names, ...) goes to the file's attributes as
    JSON; stock NetX ignores attributes, our runtime reads them.
    """
    if not hasattr(net, "export_hdf5"):
        raise ExportError(f"{type(net).__name__} has no export_hdf5(); cannot write {path}")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h:
        net.export_hdf5(h)
        for key, value in metadata.items():
            h.attrs[key] = json.dumps(value)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
