"""Plain SLAYER CUBA VGG-style network, as NetX can deploy it.

NetX reads only input, conv, flatten and dense layers, so spatial reduction uses stride-2
convolutions instead of pooling. Each block carries lava-dl's one-timestep ``delay_shift`` so
the torch model has the same layer latency as the Lava process chain.
"""
from __future__ import annotations

from typing import Any

import h5py
import numpy as np
import torch
from lava.lib.dl import slayer


class VGG(torch.nn.Module):
    """conv(3×3, stride 2) × len(channels) → flatten → dense(hidden) → dense(classes)."""

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        num_classes: int,
        channels: list[int],
        hidden: int,
        neuron: dict[str, Any],
    ) -> None:
        super().__init__()
        self.input_shape = (in_channels, input_size, input_size)
        params = {**neuron, "requires_grad": False}
        blocks: list[torch.nn.Module] = []
        size, cin = input_size, in_channels
        for cout in channels:
            blocks.append(slayer.block.cuba.Conv(params, cin, cout, 3, stride=2, padding=1, weight_scale=2, delay_shift=True))
            size, cin = (size + 1) // 2, cout
        blocks.append(slayer.block.cuba.Flatten())
        blocks.append(slayer.block.cuba.Dense(params, cin * size * size, hidden, weight_scale=2, delay_shift=True))
        blocks.append(slayer.block.cuba.Dense(params, hidden, num_classes, weight_scale=2, delay_shift=True))
        self.blocks = torch.nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[B, 2, H, W, T]`` → output spikes ``[B, classes, T]``."""
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

    def export_hdf5(self, handle: h5py.File | h5py.Group) -> None:
        """Write the NetX ``layer`` group: an input layer with its shape, then every block."""
        if self.blocks[0].neuron.shape is None:  # SLAYER learns its shapes on the first forward
            with torch.no_grad():
                self(torch.zeros(1, *self.input_shape, 2))
        layers = handle.create_group("layer")
        inp = layers.create_group("0")
        inp.create_dataset("type", (1,), "S10", [b"input"])
        inp.create_dataset("shape", data=np.array(self.input_shape))
        for i, block in enumerate(self.blocks, start=1):
            block.export_hdf5(layers.create_group(str(i)))
