"""SMA in the authors' form (``sma_block: spiking``): a leading conv, spiking branches, attention on their spikes.

As ``SMA VGG/vgg8_dvs128_SMA.py`` of the authors' code (layout ``[B, C, H, W, T]`` here):

    Y     = conv3×3(x)                                   leading conv (stride s), no neuron of its own
    S_n   = LIF(BN(conv_n(Y)))                           N spiking branches, kernels 1, 3, 5, 7
    P     = avgpool_{H,W}(Σ_n S_n)                       attention reads the branches' spikes
    W_α, W_β = softmax_n SE(P)                           as the linear form (``train.models.sma``)
    s     = CUBA(BN(Σ_n S_n · W_α[n, t] · W_β[n, t, c]))

On the chip (``train/models/fold.py``, docs/design.md "SMA, spiking form"): the leading conv and each
branch conv compose into one kernel of size ``s·(k-1)+3`` (linear, no neuron between them), so the
branches are one conv layer ``Cin → N·C`` with CUBA neurons (kernels padded to the largest, BN
folded); the attention's calibrated mean becomes a grouped 1×1 conv ``N·C → C`` (groups ``C``)
carrying the static branch weights ``r[n, c]`` and the per-timestep gain ``g[t, c]``.

To make the composition exact, the leading conv's output is not cut at the border: it is
computed ``max(k)//2`` positions beyond it (the authors zero-pad it between the two convs), so
training computes what the composed kernel computes. The branch neurons' channels are ordered
``c·N + n`` (channel-major), the order the grouped conv reads.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lava.lib.dl import slayer

from train.models.azo import AttentionZoneout
from train.models.fold import fold_spiking
from train.models.sma import MultiscaleAttention, multiscale_weights

LEAD_KERNEL = 3


class SpikingSMAConv(MultiscaleAttention):
    """The authors' SMA block: leading 3×3 conv, N conv → BN → CUBA branches, attention on their spikes."""

    folds_own_norms = True  # two neurons with norms: the fold folds each into its own chip layer

    def __init__(
        self,
        neuron_params: dict[str, Any],
        branch_params: dict[str, Any],
        in_features: int,
        out_features: int,
        timesteps: int,
        kernel_sizes: tuple[int, ...] = (1, 3, 5, 7),
        stride: int = 1,
        temporal_reduction: int = 4,
        channel_reduction: int = 4,
        weight_scale: float = 2,
        azo: AttentionZoneout | None = None,
        attention: str = "se",
    ) -> None:
        super().__init__()
        self.kernel_sizes, self.timesteps, self.stride = self._odd_sizes(kernel_sizes), int(timesteps), int(stride)
        self.neuron = slayer.neuron.cuba.Neuron(**neuron_params)
        # One neuron group for all branches: N·C channels, channel-major (c·N + n).
        self.branch_neuron = slayer.neuron.cuba.Neuron(**branch_params)
        # No 8-bit hooks on the two convs: the chip holds their composition, quantised at export.
        self.lead = slayer.synapse.Conv(
            in_features, out_features, LEAD_KERNEL, stride=stride, weight_scale=weight_scale
        )
        self.branches = torch.nn.ModuleList(
            slayer.synapse.Conv(out_features, out_features, k, weight_scale=weight_scale) for k in self.kernel_sizes
        )
        n = len(self.kernel_sizes)
        self.temporal = multiscale_weights(attention, self.timesteps, n, temporal_reduction)
        self.channel = multiscale_weights(attention, out_features, n, channel_reduction)
        self.azo = azo
        self.last_attention: dict[str, torch.Tensor] = {}

    @property
    def shape(self) -> torch.Size | None:
        """Output shape ``(C, H, W)`` once the block has seen an input (as SLAYER blocks)."""
        return self.neuron.shape

    @property
    def out_channels(self) -> int:
        return self.lead.out_channels

    def composed_kernel(self) -> torch.Tensor:
        """The branches' synapses as the chip holds them: ``[N·C, Cin, K, K]`` (channel-major), ``K = s·(max k - 1) + 3``.

        Branch ``n`` applied to the leading conv's output is one conv of the input with the kernel
        ``Σ_m K_n[c, m] ⊛_s K_lead[m, ci]`` (a transposed convolution of the two kernels), centred and
        zero-padded to the largest size.
        """
        lead = self.lead.weight[..., 0]
        size = self.stride * (max(self.kernel_sizes) - 1) + LEAD_KERNEL
        kernels = []
        for branch in self.branches:
            k = F.conv_transpose2d(branch.weight[..., 0], lead, stride=self.stride)  # [C, Cin, s(k-1)+3, ...]
            p = (size - k.shape[-1]) // 2
            kernels.append(F.pad(k, (p, p, p, p)))
        return torch.stack(kernels, dim=1).flatten(0, 1)

    def branch_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """The branches' spikes ``[B, C, N, H', W', T]``."""
        self._check_timesteps(x)
        b, cin, h, w, t = x.shape
        frames = x.permute(0, 4, 1, 2, 3).reshape(b * t, cin, h, w)
        reach = max(self.kernel_sizes) // 2
        # The leading conv evaluated `reach` positions beyond the 'same' output on every side.
        y = F.conv2d(frames, self.lead.weight[..., 0], None, self.stride, LEAD_KERNEL // 2 + self.stride * reach)
        currents = []
        for branch, k in zip(self.branches, self.kernel_sizes):
            cut = reach - k // 2
            yk = y[..., cut : y.shape[-2] - cut, cut : y.shape[-1] - cut] if cut else y
            currents.append(F.conv2d(yk, branch.weight[..., 0]))
        u = torch.stack(currents, dim=2)  # [B·T, C, N, H', W']
        c, n, ho, wo = u.shape[1:]
        u = u.unflatten(0, (b, t)).permute(0, 2, 3, 4, 5, 1).reshape(b, c * n, ho, wo, t)
        return self.branch_neuron(u).view(b, c, n, ho, wo, t)

    def fold(
        self, scale: torch.Tensor, per_timestep: bool = True, quantized: bool = True
    ) -> tuple[list[torch.nn.Module], float]:
        """Two chip layers (:func:`~train.models.fold.fold_spiking`): the composed branch conv, then the attention."""
        return fold_spiking(self, scale, per_timestep, quantized)

    def current(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The output neuron's input ``Z [B, C, H, W, T]``; a fixed ``scale`` ``s[n, t, c]`` replaces W_α·W_β."""
        spikes = self.branch_spikes(x)
        b, c, n, ho, wo, t = spikes.shape
        frames = spikes.permute(0, 5, 1, 2, 3, 4).reshape(b * t, c, n, ho, wo)
        m = [frames[:, :, i] for i in range(n)]
        return self.weighted_sum(m, lambda: spikes.sum(dim=2).mean(dim=(2, 3)).transpose(1, 2), scale, b)
