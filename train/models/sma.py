"""Spiking Multiscale Attention (SMA, paper eq. 5–12) as a SLAYER CUBA block.

SLAYER layout ``[B, C, H, W, T]``. The block replaces one conv synapse:

    M_n   = conv_n(x)                         N conv synapses, kernels 1, 3, 5, 7, 'same' padding
    Y     = mean_n M_n                        (eq. 7)
    W_α   = softmax_n Exc_α,n(ReLU(Sq_α(avgpool_{C,H,W} Y)))          [B, N, T]   (eq. 8, 10)
    W_β,t = softmax_n Exc_β,n(ReLU(Sq_β(avgpool_{H,W} Y_t)))          [B, N, T, C] (eq. 9, 11)
    Z     = Σ_n M_n · W_α[n, t] · W_β[n, t, c]                        (eq. 12)
    s     = CUBA(Z), one step of delay_shift

The branches have no neuron, batch norm or bias of their own (the paper's eq. 5 has them): they
stay linear, so export can merge them into one 7×7 conv and a per-timestep gain (DESIGN.md,
"Folding for the chip"). Their weights go through the neuron's ``quantize_8bit`` like any SLAYER
synapse. AZO (``train.models.azo``), when given, acts on the per-scale terms in training only.
"""
from __future__ import annotations

from typing import Any

import torch
from lava.lib.dl import slayer
from lava.lib.dl.slayer.block.base import step_delay

from train.models.azo import AttentionZoneout


class MultiscaleSE(torch.nn.Module):
    """Squeeze ``F → F/r``, ReLU, one excitation ``F/r → F`` per scale, softmax over scales."""

    def __init__(self, features: int, scales: int, reduction: int) -> None:
        super().__init__()
        self.features, self.scales = features, scales
        hidden = max(1, features // reduction)
        self.squeeze = torch.nn.Linear(features, hidden)
        # The N excitations (the paper's 1×1 convs K_E^n) as one matmul: rows n*F..(n+1)*F are scale n.
        self.excite = torch.nn.Linear(hidden, scales * features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[..., F]`` → weights ``[..., N, F]`` that sum to 1 over N."""
        logits = self.excite(torch.relu(self.squeeze(x)))
        return torch.softmax(logits.unflatten(-1, (self.scales, self.features)), dim=-2)


class SMAConv(torch.nn.Module):
    """SMA block: N conv synapses + temporal/channel multiscale SE attention + CUBA neuron."""

    def __init__(
        self,
        neuron_params: dict[str, Any],
        in_features: int,
        out_features: int,
        timesteps: int,
        kernel_sizes: tuple[int, ...] = (1, 3, 5, 7),
        stride: int = 1,
        temporal_reduction: int = 4,
        channel_reduction: int = 4,
        weight_scale: float = 1,
        delay_shift: bool = True,
        azo: AttentionZoneout | None = None,
    ) -> None:
        super().__init__()
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"SMAConv: kernel sizes must be odd and positive ('same' padding), got {kernel_sizes}")
        self.kernel_sizes, self.timesteps = kernel_sizes, int(timesteps)
        self.neuron = slayer.neuron.cuba.Neuron(**neuron_params)
        self.branches = torch.nn.ModuleList(
            slayer.synapse.Conv(
                in_features, out_features, k, stride=stride, padding=k // 2,
                weight_scale=weight_scale, pre_hook_fx=self.neuron.quantize_8bit,
            )
            for k in kernel_sizes
        )
        self.temporal = MultiscaleSE(self.timesteps, len(kernel_sizes), temporal_reduction)
        self.channel = MultiscaleSE(out_features, len(kernel_sizes), channel_reduction)
        self.azo = azo
        self.delay_shift = delay_shift
        self.last_attention: dict[str, torch.Tensor] = {}

    @property
    def shape(self) -> torch.Size | None:
        """Output shape ``(C, H, W)`` once the block has seen an input (as SLAYER blocks)."""
        return self.neuron.shape

    def branch_currents(self, x: torch.Tensor) -> torch.Tensor:
        """Synaptic currents of every scale, ``M [B, N, C, H, W, T]``."""
        return self._frame_currents(x).permute(0, 2, 3, 4, 5, 1)

    def _frame_currents(self, x: torch.Tensor) -> torch.Tensor:
        """``M`` in frame-major layout ``[B, T, N, C, H, W]``, the layout the rest of the block uses."""
        if x.shape[-1] != self.timesteps:
            raise ValueError(
                f"SMAConv was built for T={self.timesteps} timesteps (its temporal attention has one "
                f"weight per step), got an input with T={x.shape[-1]}"
            )
        b, c, h, w, t = x.shape
        frames = x.permute(0, 4, 1, 2, 3).reshape(b * t, c, h, w)
        # Each branch is a SLAYER synapse (weight, padding, stride, 8-bit hook) applied frame by frame
        # with conv2d: on CPU that is ~2× faster than conv3d with a (k, k, 1) kernel on the T-last
        # layout for k = 5, 7, and bit-identical (8-bit weights times binary spikes sum exactly).
        outs = []
        for br in self.branches:
            weight = br.weight if br.pre_hook_fx is None else br.pre_hook_fx(br.weight)
            outs.append(torch.nn.functional.conv2d(frames, weight[..., 0], None, br.stride[:2], br.padding[:2],
                                                   br.dilation[:2], br.groups))
        return torch.stack(outs, dim=1).unflatten(0, (b, t))

    def _attention(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``W_α [B, N, T]`` and ``W_β [B, N, T, C]`` from frame-major currents ``[B, T, N, C, H, W]``."""
        pooled = m.mean(dim=2).mean(dim=(3, 4))  # avgpool_{H,W} of Y = mean_n M_n: [B, T, C]
        w_alpha = self.temporal(pooled.mean(dim=2))  # [B, N, T]
        w_beta = self.channel(pooled).transpose(1, 2)  # [B, T, N, C] → [B, N, T, C]
        return w_alpha, w_beta

    def attention(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax weights ``W_α [B, N, T]`` and ``W_β [B, N, T, C]`` from ``M [B, N, C, H, W, T]``."""
        return self._attention(m.permute(0, 5, 1, 2, 3, 4))

    def current(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The neuron's input ``Z [B, C, H, W, T]``; a fixed ``scale`` ``s[n, t, c]`` replaces W_α·W_β.

        ``scale`` may be ``[N, T, C]`` or per sample ``[B, N, T, C]``; with it, no attention is
        computed, AZO is not applied and ``last_attention`` is left as it was.
        """
        m = self._frame_currents(x)  # [B, T, N, C, H, W]
        n, c = len(self.branches), m.shape[3]
        if scale is None:
            w_alpha, w_beta = self._attention(m)
            self.last_attention = {"temporal": w_alpha.detach(), "channel": w_beta.detach()}
            scale = w_alpha[..., None] * w_beta
        elif tuple(scale.shape[-3:]) != (n, self.timesteps, c) or scale.dim() not in (3, 4):
            raise ValueError(
                f"SMAConv: scale must be [N, T, C] = {[n, self.timesteps, c]} "
                f"(optionally with a batch axis), got {list(scale.shape)}"
            )
        else:
            w_alpha = w_beta = None
        if scale.dim() == 3:
            scale = scale.expand(m.shape[0], *scale.shape)
        s = scale.transpose(1, 2)  # [B, T, N, C]
        if self.azo is not None and self.azo.training and w_alpha is not None:
            return self._zoned_out(m, s, self.azo.select(w_alpha, w_beta).transpose(1, 2))
        # Σ_n M_n · s[n, t, c]; broadcast-multiply and sum is ~2.5× faster on CPU than the einsum
        # (which becomes thousands of tiny matmuls).
        return (m * s[..., None, None]).sum(dim=2).permute(0, 2, 3, 4, 1)

    @staticmethod
    def _zoned_out(m: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``Σ_n zoneout(M_n · s_n)`` (Algorithm 1) without building the per-scale tensor twice.

        A replaced slice (n, t, c) takes ``M_n[t-1]·s[n, t-1, c]``, so
        ``Z[t] = Σ_n M_n[t]·s[n,t]·(1 - mask[n,t]) + Σ_n M_n[t-1]·s[n,t-1]·mask[n,t]``: two weighted
        sums over scales, the second shifted by one step. ``m`` is ``[B, T, N, C, H, W]``, ``s``
        and ``mask`` are ``[B, T, N, C]``; the result is ``[B, C, H, W, T]``.
        """
        kept = s.masked_fill(mask, 0.0)
        # moved[t] = s[t] where slice t+1 takes its value from t; mask[:, 0] is never set.
        moved = torch.cat([s[:, :-1] * mask[:, 1:], torch.zeros_like(s[:, :1])], dim=1)
        carried = (m * moved[..., None, None]).sum(dim=2)
        carried = torch.cat([torch.zeros_like(carried[:, :1]), carried[:, :-1]], dim=1)
        return ((m * kept[..., None, None]).sum(dim=2) + carried).permute(0, 2, 3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[B, Cin, H, W, T]`` → spikes ``[B, Cout, H', W', T]`` (delayed by one step)."""
        return self.spikes(self.current(x))

    def forward_scaled(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The block with a fixed scaling ``s[n, t, c]`` instead of its attention (to check folding)."""
        return self.spikes(self.current(x, scale))

    def spikes(self, z: torch.Tensor) -> torch.Tensor:
        """CUBA neuron on the current ``z``, then SLAYER's one-step delay_shift."""
        s = self.neuron(z)
        return step_delay(self, s) if self.delay_shift else s
