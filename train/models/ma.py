"""Multi-dimensional attention (MA-SNN: Yao et al., "Attention Spiking Neural Networks", TPAMI 2023).

SLAYER layout ``[B, C, H, W, T]``. The block is a conv synapse whose current is scaled by
attention before the CUBA neuron:

    X    = conv(x)                                              current of the conv synapse
    a_t  = σ(MLP_t(avgpool_{C,H,W} X) + MLP_t(maxpool_{C,H,W} X))     [B, T]     temporal
    X'   = a_t · X
    a_c  = σ(MLP_c(avgpool_{H,W} X'_t) + MLP_c(maxpool_{H,W} X'_t))   [B, T, C]  channel, per step
    X''  = a_c · X'                                                     (TCA stops here)
    a_s  = σ(conv_{k×k}([mean_C X''_t, max_C X''_t]))                  [B, T, H, W] spatial, per step
    Z    = a_s · X''                                                    (TCSA)
    s    = CUBA(Z)

As in the authors' published code the attention acts on the conv output *before* the neuron
(their ``AttLIF``/``ConvAttLIF`` attend the layer's input and then integrate it into the
membrane); for a CUBA neuron that input is the synaptic current, which is also where the chip's
per-timestep gain applies, so a folded TCA is exactly a :class:`~train.models.folded.FoldedConv`.
The MLPs are shared between the average- and max-pooled paths and have no bias (the authors'
1×1 convs); the ReLU the authors put after the attended output is left out, since a NetX conv
layer passes signed currents and cannot clip them.
"""

from __future__ import annotations

from typing import Any

import torch
from lava.lib.dl import slayer

from chipnet.errors import FoldError
from train.config import MA_ATTENTIONS
from train.models.attention import AttentionBlock
from train.models.fold import Site, folded_conv

ATTENTIONS = MA_ATTENTIONS


class SharedSE(torch.nn.Module):
    """Squeeze-excitation ``F → F/r → F`` (no bias) shared by the average and max paths, then a sigmoid."""

    def __init__(self, features: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, features // reduction)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(features, hidden, bias=False),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, features, bias=False),
        )

    def forward(self, avg: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
        """Pooled ``[..., F]`` (average and max) → weights ``[..., F]`` in (0, 1)."""
        return torch.sigmoid(self.mlp(avg) + self.mlp(peak))


class MAConv(AttentionBlock):
    """MA block: conv synapse → temporal × channel (× spatial) attention on the current → CUBA neuron."""

    def __init__(
        self,
        neuron_params: dict[str, Any],
        in_features: int,
        out_features: int,
        timesteps: int,
        kernel_size: int = 3,
        stride: int = 1,
        attention: str = "tca",
        reduction: int = 4,
        spatial_kernel: int = 3,
        weight_scale: float = 1,
    ) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"MAConv: attention must be one of {ATTENTIONS}, got {attention!r}")
        if kernel_size < 1 or kernel_size % 2 == 0 or spatial_kernel < 1 or spatial_kernel % 2 == 0:
            raise ValueError(f"MAConv: kernels must be odd ('same' padding), got {kernel_size} and {spatial_kernel}")
        self.timesteps, self.attention_kind = int(timesteps), attention
        self.neuron = slayer.neuron.cuba.Neuron(**neuron_params)
        self.synapse = slayer.synapse.Conv(
            in_features,
            out_features,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            weight_scale=weight_scale,
            pre_hook_fx=self.neuron.quantize_8bit,
        )
        self.temporal = SharedSE(self.timesteps, reduction)
        self.channel = SharedSE(out_features, reduction)
        self.spatial = (
            torch.nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
            if attention == "tcsa"
            else None
        )
        self.last_attention: dict[str, torch.Tensor] = {}

    @property
    def shape(self) -> torch.Size | None:
        """Output shape ``(C, H, W)`` once the block has seen an input (as SLAYER blocks)."""
        return self.neuron.shape

    def kernel(self) -> torch.Tensor:
        """The conv kernel ``[Cout, Cin, k, k]`` as the chip holds it (after ``quantize_8bit``)."""
        return self.synapse.pre_hook_fx(self.synapse.weight)[..., 0]

    kind = "ma"

    def uniform_scale(self) -> torch.Tensor:
        """All-ones attention ``[T, C]``."""
        return torch.ones(self.timesteps, self.synapse.out_channels, dtype=torch.float64)

    def check_deployable(self, where: str) -> None:
        """MA's spatial attention (TCSA) has no exact folded form (:func:`~train.models.fold.check_foldable`)."""
        if self.spatial is not None:
            raise FoldError(
                f"{where} has MA spatial attention (ma_attention: tcsa), which cannot be exported: its "
                "per-position map scales the current at each (h, w), but a NetX conv layer shares its weights "
                "across positions and the per-timestep gain is per channel [T, C] only, so no folded form is "
                "exact; train with ma_attention: tca (temporal × channel) to deploy"
            )

    def fold(
        self, scale: torch.Tensor, per_timestep: bool = True, quantized: bool = True
    ) -> tuple[list[torch.nn.Module], float]:
        """One :class:`~train.models.folded.FoldedConv`: the 3×3 kernel, the mean ``g[t, c]`` as its gain (exact)."""
        self.check_deployable("this MA block")
        if tuple(scale.shape) != (self.timesteps, self.synapse.out_channels):
            raise ValueError(
                f"MA attention statistics must be [T, C] = {[self.timesteps, self.synapse.out_channels]}, "
                f"got {list(scale.shape)}"
            )
        syn = self.synapse
        site = Site(self.neuron, syn.in_channels, syn.out_channels, syn.stride[0], self.timesteps)
        stage = folded_conv(self.kernel().detach().float(), scale.float(), site, per_timestep, quantized)
        return [stage], 0.0

    def attention_scale(self) -> torch.Tensor:
        """The last forward's temporal × channel weights ``a_t · a_c`` per sample, ``[B, T, C]``."""
        return self.last_attention["temporal"][..., None] * self.last_attention["channel"]

    def current(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The neuron's input ``Z [B, C, H, W, T]``; a fixed ``scale`` replaces every attention.

        ``scale`` is ``[T, C]`` or per sample ``[B, T, C]`` (a TCSA block's spatial attention is
        then not applied either); with it ``last_attention`` is left as it was.
        """
        if x.shape[-1] != self.timesteps:
            raise ValueError(
                f"MAConv was built for T={self.timesteps} timesteps (its temporal attention has one "
                f"weight per step), got an input with T={x.shape[-1]}"
            )
        z = self.synapse(x)  # [B, C, H, W, T]
        b, c = z.shape[:2]
        if scale is not None:
            if scale.dim() not in (2, 3) or tuple(scale.shape[-2:]) != (self.timesteps, c):
                raise ValueError(
                    f"MAConv: scale must be [T, C] = {[self.timesteps, c]} (optionally with a batch axis), "
                    f"got {list(scale.shape)}"
                )
            return z * scale.expand(b, self.timesteps, c).transpose(1, 2)[:, :, None, None, :]
        a_t = self.temporal(z.mean(dim=(1, 2, 3)), z.amax(dim=(1, 2, 3)))  # [B, T]
        z = z * a_t[:, None, None, None, :]
        a_c = self.channel(z.mean(dim=(2, 3)).transpose(1, 2), z.amax(dim=(2, 3)).transpose(1, 2))  # [B, T, C]
        z = z * a_c.transpose(1, 2)[:, :, None, None, :]
        self.last_attention = {"temporal": a_t.detach(), "channel": a_c.detach()}
        if self.spatial is not None:
            pooled = torch.stack([z.mean(dim=1), z.amax(dim=1)], dim=1)  # [B, 2, H, W, T]
            frames = pooled.permute(0, 4, 1, 2, 3).flatten(0, 1)  # [B·T, 2, H, W]
            a_s = torch.sigmoid(self.spatial(frames)).unflatten(0, (b, -1))[:, :, 0]  # [B, T, H, W]
            z = z * a_s.permute(0, 2, 3, 1)[:, None]
            self.last_attention["spatial"] = a_s.detach()
        return z
