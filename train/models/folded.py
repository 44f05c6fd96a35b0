"""The deployable form of an attention layer: one conv synapse, a per-timestep gain, a CUBA neuron.

Export folds an :class:`~train.models.sma.SMAConv` into this block (``train/models/fold.py``); deploy-
aware fine-tuning trains it directly. The gain ``g[t, c]`` multiplies the synaptic current
before the neuron, quantised as the chip applies it (``mant / 2**exp``, see
``docs/netx-format.md``), with a straight-through gradient so it can still be trained.
"""

from __future__ import annotations

import copy
from typing import Any

import h5py
import numpy as np
import torch
from lava.lib.dl import slayer

from chipnet.chip import GAIN_EXP_MAX, GAIN_MANT_BITS, GAIN_MANT_MAX
from chipnet.netwriter import write_conv_layer


def gain_exponent(gain: torch.Tensor, mant_bits: int = GAIN_MANT_BITS) -> int:
    """The largest shift (≤ 15) that keeps every mantissa ``round(g · 2**exp)`` within ``mant_bits``."""
    top = (1 << mant_bits) - 1
    peak = float(gain.detach().abs().max()) if gain.numel() else 0.0
    exp = GAIN_EXP_MAX
    while exp > 0 and round(peak * (1 << exp)) > top:
        exp -= 1
    return exp


def quantize_gain(gain: torch.Tensor, mant_bits: int = GAIN_MANT_BITS) -> tuple[np.ndarray, int]:
    """Integer form ``(mant [T, C] int32, exp)`` of a non-negative gain, as the file stores it."""
    g = gain.detach().double().cpu()
    if not torch.isfinite(g).all() or (g < 0).any():
        raise ValueError("gains must be finite and non-negative")
    exp = gain_exponent(g, mant_bits)
    mant = torch.clamp(torch.round(g * (1 << exp)), 0, (1 << mant_bits) - 1)
    return mant.numpy().astype(np.int32), exp


class FoldedConv(torch.nn.Module):
    """conv synapse → current × gain[t, c] → CUBA neuron (a SLAYER-style block, no delay: see ``train.models.vgg``)."""

    def __init__(
        self,
        neuron_params: dict[str, Any],
        in_features: int,
        out_features: int,
        kernel_size: int,
        timesteps: int,
        stride: int = 1,
        padding: int = 0,
        gain: torch.Tensor | None = None,
        per_timestep: bool = True,
        neuron: slayer.neuron.cuba.Neuron | None = None,
        quantized: bool = True,
        groups: int = 1,
    ) -> None:
        super().__init__()
        # Folding keeps the SMA block's own neuron (same decays and threshold, learnt or not).
        self.neuron = copy.deepcopy(neuron) if neuron is not None else slayer.neuron.cuba.Neuron(**neuron_params)
        # quantized False: float kernel and gain, the fold before the chip's rounding (folded_float).
        self.quantized = quantized
        self.synapse = slayer.synapse.Conv(
            in_features,
            out_features,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=groups,
            pre_hook_fx=self.neuron.quantize_8bit if quantized else None,
        )
        init = torch.ones(timesteps, out_features) if gain is None else gain.detach().clone().float()
        if tuple(init.shape) != (timesteps, out_features):
            raise ValueError(f"FoldedConv: gain must be [T, C] = {[timesteps, out_features]}, got {list(init.shape)}")
        # The threshold is part of the folded state (static folds may rescale it), so it is a buffer
        # that checkpoints carry; SLAYER's neuron keeps it as a plain attribute.
        self.register_buffer("threshold", torch.tensor(float(self.neuron.threshold)))
        self.per_timestep = per_timestep
        # Without a schedule the gain is 1 and the block is a stock NetX conv layer.
        self.gain = torch.nn.Parameter(init if per_timestep else torch.ones_like(init), requires_grad=per_timestep)

    @property
    def shape(self) -> torch.Size | None:
        """Output shape ``(C, H, W)`` once the block has seen an input."""
        return self.neuron.shape

    def quantize(self) -> None:
        """From here on, weights and gain as the chip holds them (after a fold computed them in float)."""
        self.quantized = True
        self.synapse.pre_hook_fx = self.neuron.quantize_8bit

    def quantized_gain(self) -> torch.Tensor:
        """The gain as the chip applies it, with a straight-through gradient (float when not ``quantized``)."""
        g = self.gain.clamp_min(0)
        if not self.quantized:
            return g
        step = 2.0 ** -gain_exponent(g)
        q = torch.clamp(torch.round(g / step), 0, GAIN_MANT_MAX) * step
        return g + (q - g).detach()

    def set_threshold(self, value: float) -> None:
        """Set the neuron threshold (rounded to SLAYER's weight grid, as the chip holds it)."""
        scale = self.neuron.w_scale
        self.threshold.fill_(max(1, round(value * scale)) / scale)
        self._sync_threshold()

    def _sync_threshold(self) -> None:
        self.neuron._threshold = float(self.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[B, Cin, H, W, T]`` → spikes ``[B, Cout, H', W', T]``."""
        self._sync_threshold()
        z = self.synapse(x) * self.quantized_gain().t()[None, :, None, None, :]
        return self.neuron(z)

    def export_hdf5(self, handle: h5py.Group) -> None:
        """A NetX ``conv`` layer plus the ``gain_mant``/``gain_exp`` datasets of docs/netx-format.md."""
        self._sync_threshold()
        syn = self.synapse
        weight = syn.pre_hook_fx(syn.weight, descale=True).reshape(syn.weight.shape[:-1]).detach().cpu().numpy()
        norm = self.neuron.norm
        bias = None
        if norm is not None:  # a chip-form norm (train.models.norm.NeuronBias): its bias, as SLAYER writes it
            if not hasattr(norm, "bias") or hasattr(norm, "weight_exp"):
                raise ValueError(
                    f"FoldedConv: export the chip form of the norm (chip_norms), not {type(norm).__name__}"
                )
            bias = norm.bias.detach().cpu().numpy().flatten()
        write_conv_layer(
            handle,
            shape=tuple(self.neuron.shape),
            in_channels=syn.in_channels,
            out_channels=syn.out_channels,
            kernel_size=tuple(syn.kernel_size[:-1]),
            stride=tuple(syn.stride[:-1]),
            padding=tuple(syn.padding[:-1]),
            dilation=tuple(syn.dilation[:-1]),
            groups=syn.groups,
            weight=weight,
            neuron=self.neuron.device_params,
            bias=bias,
            gain=quantize_gain(self.gain.clamp_min(0)) if self.per_timestep else None,
        )
