"""The part SMA and MA blocks share: a neuron that integrates an attention-scaled synaptic current."""

from __future__ import annotations

import torch


class ScaledCurrentBlock(torch.nn.Module):
    """A block computing ``current(x)`` (attention-scaled, or with a fixed ``scale``) into ``self.neuron``."""

    neuron: torch.nn.Module

    def current(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The neuron's input current ``[B, C, H, W, T]``; a fixed ``scale`` replaces the attention."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[B, Cin, H, W, T]`` → spikes ``[B, Cout, H', W', T]`` (same step; see ``train.models.vgg``)."""
        return self.spikes(self.current(x))

    def forward_scaled(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The block with a fixed scaling instead of its attention (to check folding)."""
        return self.spikes(self.current(x, scale))

    def spikes(self, z: torch.Tensor) -> torch.Tensor:
        """CUBA neuron on the current ``z``."""
        if self.neuron.norm is not None:  # SLAYER's norms view() the current: it must be contiguous
            z = z.contiguous()
        return self.neuron(z)
