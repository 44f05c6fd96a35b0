"""The attention-block interface: what training, calibration, folding and export ask of an attention layer.

An attention block is a neuron that integrates an attention-scaled synaptic current. Export never
looks inside one; it asks it, through these methods:

- **scale**: :meth:`AttentionBlock.current` with a fixed ``scale`` instead of the attention
  (:meth:`forward_scaled` checks a fold against the block);
- **calibrate**: :meth:`attention_scale`, the per-sample scale of the last forward pass, whose
  mean over calibration samples is what the chip runs; :meth:`uniform_scale` is the all-ones one;
- **check**: :meth:`check_deployable` raises :class:`~chipnet.errors.FoldError` for a trained
  layer with no exact folded form;
- **fold**: :meth:`fold` returns the deployable stages (``FoldedConv`` and friends) for a
  calibrated scale, and the fold's relative error.

A new attention module is one file with its block (subclassing this) and the model that places it,
plus its line in the model registry (``train/models/__init__.py``) and its options section in
``train/config.py`` (docs/design.md, "Adding an attention module").
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


class AttentionBlock(torch.nn.Module):
    """A block computing ``current(x)`` (attention-scaled, or with a fixed ``scale``) into ``self.neuron``."""

    kind: str = ""  # short name in messages and metadata: "sma", "ma", ...
    neuron: torch.nn.Module
    timesteps: int

    def current(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The neuron's input current ``[B, C, H, W, T]``; a fixed ``scale`` replaces the attention."""
        raise NotImplementedError

    def attention_scale(self) -> torch.Tensor:
        """The attention scale of the last forward pass, one per sample (the shape :meth:`fold` takes, batched)."""
        raise NotImplementedError

    def uniform_scale(self) -> torch.Tensor:
        """The scale of all-ones attention (float64): the statistics of a folded shell before calibration."""
        raise NotImplementedError

    def check_deployable(self, where: str) -> None:
        """Raise :class:`~chipnet.errors.FoldError` (naming ``where``) if this layer has no exact folded form."""

    def fold(
        self, scale: torch.Tensor, per_timestep: bool = True, quantized: bool = True
    ) -> tuple[list[torch.nn.Module], float]:
        """The deployable stages for the calibrated ``scale``, and the fold's relative error.

        ``per_timestep`` False folds the time-averaged gain into the weights (stock NetX);
        ``quantized`` False keeps kernels and gains in float (export's ``folded_float``).
        """
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


def default_attention_layers(num_convs: int) -> list[int]:
    """The paper's best placement S3: the first half of the conv layers, not the encoding layer.

    For the paper's 5-conv VGG8 that is conv layers 1 and 2 (0-based), as in the authors' code;
    a 2-conv network gets its second conv.
    """
    if num_convs < 2:
        raise ValueError(
            f"attention needs at least 2 conv layers (the first one stays a plain encoder), got {num_convs}"
        )
    return list(range(1, max(2, math.ceil(num_convs / 2))))


def attention_layers(layers: Sequence[int] | None, num_convs: int, what: str) -> list[int]:
    """The conv layers that get attention blocks (``what``: SMA or MA): ``layers``, or S3 if None."""
    chosen = default_attention_layers(num_convs) if layers is None else [int(i) for i in layers]
    bad = [i for i in chosen if not 0 <= i < num_convs]
    if bad:
        raise ValueError(f"{what} layers {bad} are not conv layers of a network with {num_convs} conv layers")
    return chosen
