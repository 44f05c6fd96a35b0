"""GainNetwork: NetX's ``hdf5.Network`` with a gain neuron for layers that carry a gain schedule.

Layers whose HDF5 group holds ``gain_mant``/``gain_exp`` (docs/netx-format.md) get a
:class:`~lava_runtime.processes.gain_lif.GainLIFReset` neuron; all other layers are built by
stock NetX. It lives in ``processes/`` because Lava finds process models by importing every
module beside the process class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lava.lib.dl import netx
from lava.lib.dl.netx.blocks.models import AbstractPyBlockModel
from lava.lib.dl.netx.blocks.process import Conv, Dense
from lava.lib.dl.netx.utils import optimize_weight_bits
from lava.magma.core.decorator import implements
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from chipnet.errors import RuntimeConfigError
from chipnet.netfile import read_gain
from chipnet.netmodel import GAIN_MANT
from lava_runtime.processes.gain_lif import GainLIFReset


def _gain_neuron_params(layer_config: Any, reset_interval: int | None, reset_offset: int, spike_exp: int) -> dict:
    """NetX's neuron parameters for the layer, switched to ``GainLIFReset`` with the layer's gains."""
    if reset_interval is None:
        # Without periodic resets the sample step of the gain table is undefined.
        raise RuntimeConfigError("layers with a per-timestep gain need reset_interval = timesteps")
    params = netx.hdf5.Network.get_neuron_params(
        layer_config["neuron"], reset_interval=reset_interval, reset_offset=reset_offset, spike_exp=spike_exp
    )
    params["neuron_proc"] = GainLIFReset
    gain = read_gain(layer_config.f, layer_config.f.name)
    params["gain_mant"], params["gain_exp"] = gain.mant, gain.exp
    return params


def has_gain(layer_config: Any) -> bool:
    """Whether an HDF5 layer group carries a per-timestep gain schedule."""
    return GAIN_MANT in layer_config.keys()


class GainNetwork(netx.hdf5.Network):
    """``netx.hdf5.Network`` that gives layers with ``gain_mant``/``gain_exp`` a ``GainLIFReset`` neuron.

    NetX builds each neuron from ``get_neuron_params`` inside ``create_conv``/``create_dense``
    with no hook for another neuron process, so for gain layers these two rebuild NetX's block
    arguments (same weight layout and bit optimisation) with the gain neuron; plain layers go
    through stock NetX.
    """

    @staticmethod
    def create_conv(
        layer_config: Any,
        input_shape: tuple[int, int, int],
        input_message_bits: int = 0,
        reset_interval: int | None = None,
        reset_offset: int = 0,
        spike_exp: int = 6,
    ) -> tuple[Conv, str]:
        """Stock NetX conv block, or the same block with a gain neuron."""
        if not has_gain(layer_config):
            return netx.hdf5.Network.create_conv(
                layer_config, input_shape, input_message_bits, reset_interval, reset_offset, spike_exp
            )

        def expand(x: Any) -> np.ndarray:
            return np.array([x, x]) if np.isscalar(x) else x[::-1]

        shape = tuple(layer_config["shape"][::-1])  # WHC
        weight = layer_config["weight"][:, :, ::-1, ::-1]
        weight = weight.reshape(weight.shape[:4]).transpose((0, 3, 2, 1))
        params = {
            "input_shape": input_shape,
            "shape": shape,
            "neuron_params": _gain_neuron_params(layer_config, reset_interval, reset_offset, spike_exp),
            "weight": weight,
            "stride": expand(layer_config["stride"]),
            "padding": expand(layer_config["padding"]),
            "dilation": expand(layer_config["dilation"]),
            "groups": layer_config["groups"],
            "input_message_bits": input_message_bits,
        }
        if "bias" in layer_config.keys():
            params["bias"] = layer_config["bias"]
        table = netx.hdf5.Network._table_str(
            type_str="GainConv",
            width=shape[0],
            height=shape[1],
            channel=shape[2],
            kernel=np.array(weight.shape[1:3]),
            stride=params["stride"],
            padding=params["padding"],
            dilation=params["dilation"],
            groups=params["groups"],
        )
        return Conv(**params), table

    @staticmethod
    def create_dense(
        layer_config: Any,
        input_message_bits: int = 0,
        reset_interval: int | None = None,
        reset_offset: int = 0,
        spike_exp: int = 6,
        sparse_synapse: bool = False,
        rec: bool = False,
    ) -> tuple[Dense, str]:
        """Stock NetX dense block, or the same block with a gain neuron."""
        if not has_gain(layer_config):
            return netx.hdf5.Network.create_dense(
                layer_config, input_message_bits, reset_interval, reset_offset, spike_exp, sparse_synapse, rec
            )
        if rec or "delay" in layer_config.keys() or "weight/imag" in layer_config.f:
            raise RuntimeConfigError("per-timestep gains are supported on plain conv and dense layers only")
        shape = (int(np.prod(layer_config["shape"])),)
        weight = layer_config["weight"]
        if weight.ndim == 1:
            weight = weight.reshape(shape[0], -1)
        weight, num_weight_bits, weight_exponent, sign_mode = optimize_weight_bits(weight)
        params = {
            "shape": shape,
            "neuron_params": _gain_neuron_params(layer_config, reset_interval, reset_offset, spike_exp),
            "weight": weight,
            "num_weight_bits": num_weight_bits,
            "weight_exponent": weight_exponent,
            "sign_mode": sign_mode,
            "input_message_bits": input_message_bits,
            "sparse_synapse": sparse_synapse,
        }
        if "bias" in layer_config.keys():
            params["bias"] = layer_config["bias"]
        table = netx.hdf5.Network._table_str(type_str="GainDense", width=1, height=1, channel=shape[0])
        return Dense(**params), table


@implements(proc=GainNetwork, protocol=LoihiProtocol)
class PyGainNetworkModel(AbstractPyBlockModel):
    """The network is its layers (Lava matches models to the exact process class, so NetX's does not serve)."""

    def __init__(self, proc: AbstractProcess) -> None:
        super().__init__(proc)
