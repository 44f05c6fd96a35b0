"""Plain SLAYER CUBA VGG-style network, as NetX can deploy it.

NetX reads only input, conv, flatten and dense layers, so spatial reduction uses stride-2
convolutions instead of pooling.

Timing (docs/design.md, "Timing"): the blocks have no ``delay_shift``. On the chip every layer
lags the previous one by one step, but each layer is reset when a sample reaches it, so in the
layer's own time its step ``j`` integrates the previous layer's step ``j``: the network in
"local time" is exactly this delay-free model over the sample's ``T`` steps, and every input
frame, the last one included, reaches the decision. (SLAYER's ``delay_shift`` would instead
shift each layer by one step inside the same ``T`` and so drop the last ``L`` input frames.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h5py
import torch
from lava.lib.dl import slayer

from chipnet.netwriter import write_input_layer
from train.config import POOLS, READOUTS
from train.models.norm import neuron_params
from train.models.pool import SpikeMaxPool
from train.models.readout import VoltageReadout

# (index of the conv layer, neuron params, in channels, out channels, stride) → block
ConvFactory = Callable[[int, dict[str, Any], int, int, int], torch.nn.Module]


def plain_conv(
    index: int, params: dict[str, Any], cin: int, cout: int, stride: int = 2, kernel: int = 3
) -> torch.nn.Module:
    """The VGG's conv block: ``kernel``×``kernel`` (3 by default), stride 2 (1 where a pool follows),
    'same' padding, CUBA neuron.

    No delay_shift: see the module doc.
    """
    return slayer.block.cuba.Conv(
        params, cin, cout, kernel, stride=stride, padding=kernel // 2, weight_scale=2, delay_shift=False
    )


def wide_conv(layers: list[int], kernel: int = 7) -> ConvFactory:
    """Conv blocks with ``kernel``×``kernel`` synapses at ``layers`` and 3×3 elsewhere.

    ``vgg7``: the like-for-like baseline of SMA-VGG, whose folded SMA layers deploy as one 7×7 conv
    (with a per-timestep gain) at the same positions, so both have the same synapse count.
    """

    def block(index: int, params: dict[str, Any], cin: int, cout: int, stride: int = 2) -> torch.nn.Module:
        return plain_conv(index, params, cin, cout, stride, kernel if index in layers else 3)

    return block


class VGG(torch.nn.Module):
    """conv(3×3, stride 2) × len(channels) → flatten → dense(hidden) … → dense(classes).

    ``pool="max"`` downsamples as the paper: conv stride 1, then a 2×2 max pool of the spikes
    (:class:`~train.models.pool.SpikeMaxPool`, a layer NetX runs).

    ``norm`` (``train.models.norm.NORMS``) normalises every conv layer's current, as the paper's batch
    norm after each conv; ``dropout`` drops spikes of the hidden dense layers in training. ``bias``
    gives every neuron without a norm a trained bias (NetX's neuron ``bias``). ``readout``
    (``train.models.readout``) is the output layer: spiking, or a non-spiking voltage integrator.
    """

    # T of the dummy input that sizes SLAYER's neurons; networks with per-step weights need their own T.
    sizing_timesteps = 2

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        num_classes: int,
        channels: list[int],
        hidden: int | list[int],
        neuron: dict[str, Any],
        conv_block: ConvFactory = plain_conv,
        norm: str = "none",
        dropout: float = 0.0,
        readout: str = "spikes",
        bias: bool = False,
        pool: str = "stride",
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.input_shape = (in_channels, input_size, input_size)
        params = {**neuron, "requires_grad": False}
        blocks: list[torch.nn.Module] = []
        size, cin = input_size, in_channels
        for i, cout in enumerate(channels):
            if pool == "max":
                blocks.append(conv_block(i, neuron_params(params, norm, cout, bias=bias), cin, cout, 1))
                blocks.append(SpikeMaxPool(params, cout))
                size, cin = size // 2, cout
            else:
                blocks.append(conv_block(i, neuron_params(params, norm, cout, bias=bias), cin, cout, 2))
                size, cin = (size + 1) // 2, cout
        blocks.append(slayer.block.cuba.Flatten())
        width = cin * size * size
        for h in [hidden] if isinstance(hidden, int) else list(hidden):
            hidden_params = neuron_params(params, "none", h, dropout, bias=bias)
            blocks.append(slayer.block.cuba.Dense(hidden_params, width, h, weight_scale=2, delay_shift=False))
            width = h
        if readout == "voltage":
            blocks.append(VoltageReadout(width, num_classes, weight_scale=2))
        elif readout == "spikes":
            out_params = neuron_params(params, "none", num_classes, bias=bias)
            blocks.append(slayer.block.cuba.Dense(out_params, width, num_classes, weight_scale=2, delay_shift=False))
        else:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.blocks = torch.nn.ModuleList(blocks)
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[B, 2, H, W, T]`` → output ``[B, classes, T]``: spikes, or the readout's voltage."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output spikes of every block (flatten included), for counting and parity checks."""
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs

    def materialize(self) -> None:
        """Run one dummy sample so SLAYER's lazily sized neurons get their shapes."""
        if self.blocks[0].neuron.shape is None:
            training = self.training
            with torch.no_grad():
                self.eval()(torch.zeros(1, *self.input_shape, self.sizing_timesteps))
            self.train(training)

    def export_hdf5(self, handle: h5py.File | h5py.Group) -> None:
        """Write the NetX ``layer`` group: an input layer with its shape, then every block."""
        self.materialize()
        layers = write_input_layer(handle, tuple(self.input_shape))
        for i, block in enumerate(self.blocks, start=1):
            block.export_hdf5(layers.create_group(str(i)))
