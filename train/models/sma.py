"""Spiking Multiscale Attention (SMA, paper eq. 5–12) as a SLAYER CUBA block.

SLAYER layout ``[B, C, H, W, T]``. The block replaces one conv synapse:

    M_n   = conv_n(x)                         N conv synapses, kernels 1, 3, 5, 7, 'same' padding
    Y     = mean_n M_n                        (eq. 7)
    W_α   = softmax_n Exc_α,n(ReLU(Sq_α(avgpool_{C,H,W} Y)))          [B, N, T]   (eq. 8, 10)
    W_β,t = softmax_n Exc_β,n(ReLU(Sq_β(avgpool_{H,W} Y_t)))          [B, N, T, C] (eq. 9, 11)
    Z     = Σ_n M_n · W_α[n, t] · W_β[n, t, c]                        (eq. 12)
    s     = CUBA(Z)

The branches have no neuron, batch norm or bias of their own (the paper's eq. 5 has them): they
stay linear, so export can merge them into one 7×7 conv and a per-timestep gain (docs/design.md,
"SMA and its fold"). Their weights go through the neuron's ``quantize_8bit`` like any SLAYER
synapse. AZO (``train.models.azo``), when given, acts on the per-scale terms in training only.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from lava.lib.dl import slayer

from train.models.attention import AttentionBlock
from train.models.azo import AttentionZoneout
from train.models.fold import Site, fold, folded_conv


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


class StaticScales(torch.nn.Module):
    """Learned weights ``[N, F]`` (softmax over N) that do not depend on the input: SMA without its attention.

    A drop-in for :class:`MultiscaleSE` (``sma.attention: static``): the block keeps its branches,
    neurons and deployed layers, so comparing the two measures what the data-dependent attention adds.
    """

    def __init__(self, features: int, scales: int) -> None:
        super().__init__()
        self.features, self.scales = features, scales
        self.logits = torch.nn.Parameter(torch.zeros(scales, features))  # uniform 1/N at the start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[..., F]`` (only their shape is used) → weights ``[..., N, F]`` that sum to 1 over N."""
        return torch.softmax(self.logits, dim=0).expand(*x.shape[:-1], self.scales, self.features)


def multiscale_weights(attention: str, features: int, scales: int, reduction: int) -> MultiscaleSE | StaticScales:
    """The module giving one SMA axis its weights over scales: ``se`` (the paper's) or ``static``."""
    if attention == "se":
        return MultiscaleSE(features, scales, reduction)
    if attention == "static":
        return StaticScales(features, scales)
    raise ValueError(f"sma attention must be 'se' or 'static', got {attention!r}")


class MultiscaleAttention(AttentionBlock):
    """What both SMA forms share: the temporal and channel SE over N scales, AZO, and the weighted sum.

    A subclass sets ``timesteps``, ``temporal``, ``channel`` (:class:`MultiscaleSE`), ``azo`` and
    ``last_attention``, and computes the per-scale terms ``M_n`` and the pooled ``avgpool_{H,W}(Y)``.
    """

    timesteps: int
    temporal: MultiscaleSE | StaticScales
    channel: MultiscaleSE | StaticScales
    azo: AttentionZoneout | None
    last_attention: dict[str, torch.Tensor]

    def _attention(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``W_α [B, N, T]`` and ``W_β [B, N, T, C]`` from ``avgpool_{H,W}(Y)`` ``[B, T, C]``."""
        w_alpha = self.temporal(pooled.mean(dim=2))  # [B, N, T]
        w_beta = self.channel(pooled).transpose(1, 2)  # [B, T, N, C] → [B, N, T, C]
        return w_alpha, w_beta

    kind = "sma"

    def attention_scale(self) -> torch.Tensor:
        """The last forward's attention product ``W_α · W_β`` per sample, ``[B, N, T, C]`` (what calibration averages)."""
        return self.last_attention["temporal"][..., None] * self.last_attention["channel"]

    def uniform_scale(self) -> torch.Tensor:
        """All-ones attention ``[N, T, C]``."""
        return torch.ones(len(self.branches), self.timesteps, self.branches[0].out_channels, dtype=torch.float64)

    @classmethod
    def _odd_sizes(cls, kernel_sizes: tuple[int, ...]) -> tuple[int, ...]:
        """``kernel_sizes`` as ints; a ValueError unless each is odd and positive (centred branches)."""
        sizes = tuple(int(k) for k in kernel_sizes)
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ValueError(f"{cls.__name__}: kernel sizes must be odd and positive, got {sizes}")
        return sizes

    def _check_timesteps(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.timesteps:
            raise ValueError(
                f"{type(self).__name__} was built for T={self.timesteps} timesteps (its temporal attention has one "
                f"weight per step), got an input with T={x.shape[-1]}"
            )

    def weighted_sum(
        self, m: list[torch.Tensor], pooled: Callable[[], torch.Tensor], scale: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        """``Z [B, C, H, W, T]`` from the N per-scale terms ``m`` (frames ``[B·T, C, H, W]``).

        Without ``scale`` the attention is computed from ``pooled()`` (``[B, T, C]``) and AZO acts in
        training; a fixed ``scale`` ``s[n, t, c]`` (``[N, T, C]`` or per sample ``[B, N, T, C]``)
        replaces ``W_α·W_β``, and then no attention is computed and ``last_attention`` is left as it was.
        """
        b, n, c = batch, len(m), m[0].shape[1]
        if scale is None:
            w_alpha, w_beta = self._attention(pooled())
            self.last_attention = {"temporal": w_alpha.detach(), "channel": w_beta.detach()}
            scale = w_alpha[..., None] * w_beta
        elif tuple(scale.shape[-3:]) != (n, self.timesteps, c) or scale.dim() not in (3, 4):
            raise ValueError(
                f"{type(self).__name__}: scale must be [N, T, C] = {[n, self.timesteps, c]} "
                f"(optionally with a batch axis), got {list(scale.shape)}"
            )
        else:
            w_alpha = w_beta = None
        if scale.dim() == 3:
            scale = scale.expand(b, *scale.shape)
        s = scale.transpose(1, 2)  # [B, T, N, C]
        if self.azo is not None and self.azo.training and w_alpha is not None:
            mask = self.azo.select(w_alpha, w_beta).transpose(1, 2)
        else:
            mask = None
        z = scale_sum(m, s.reshape(b * self.timesteps, n, c), mask)  # [B·T, C, H', W']
        return z.unflatten(0, (b, -1)).permute(0, 2, 3, 4, 1)


class SMAConv(MultiscaleAttention):
    """SMA block (linear form): N conv synapses + temporal/channel multiscale SE attention + CUBA neuron."""

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
        azo: AttentionZoneout | None = None,
        attention: str = "se",
    ) -> None:
        super().__init__()
        self.kernel_sizes, self.timesteps = self._odd_sizes(kernel_sizes), int(timesteps)
        self.neuron = slayer.neuron.cuba.Neuron(**neuron_params)
        self.branches = torch.nn.ModuleList(
            slayer.synapse.Conv(
                in_features,
                out_features,
                k,
                stride=stride,
                padding=k // 2,
                weight_scale=weight_scale,
                pre_hook_fx=self.neuron.quantize_8bit,
            )
            for k in self.kernel_sizes
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

    def branch_currents(self, x: torch.Tensor) -> torch.Tensor:
        """Synaptic currents of every scale, ``M [B, N, C, H, W, T]``."""
        m = torch.stack(self._branch_frames(self._frames(x), self._weights()), dim=1)  # [B·T, N, C, H', W']
        return m.unflatten(0, (x.shape[0], -1)).permute(0, 2, 3, 4, 5, 1)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """Input ``[B, C, H, W, T]`` as frames ``[B·T, C, H, W]``."""
        self._check_timesteps(x)
        b, c, h, w, t = x.shape
        # Not channels-last: torch 2.3's oneDNN writes past its workspace in the backward of a strided
        # 1×1 convolution on channels-last input with few input channels (oneDNN issue #6035; here
        # "double free or corruption" in one thread), and the training step was no faster with it.
        return x.permute(0, 4, 1, 2, 3).reshape(b * t, c, h, w)

    def _weights(self) -> list[torch.Tensor]:
        """Each branch's 2-D kernel ``[C_out, C_in, k, k]`` after the synapse's 8-bit hook."""
        return [(br.weight if br.pre_hook_fx is None else br.pre_hook_fx(br.weight))[..., 0] for br in self.branches]

    def _branch_frames(self, frames: torch.Tensor, weights: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each branch's current ``M_n`` on frames: a list of N tensors ``[B·T, C, H', W']``."""
        # Each branch is a SLAYER synapse (weight, padding, stride, 8-bit hook) applied frame by frame
        # with conv2d: on CPU that is ~2× faster than conv3d with a (k, k, 1) kernel on the T-last
        # layout for k = 5, 7, and bit-identical (8-bit weights times binary spikes sum exactly).
        return [
            torch.nn.functional.conv2d(frames, wt, None, br.stride[:2], br.padding[:2], br.dilation[:2], br.groups)
            for br, wt in zip(self.branches, weights)
        ]

    def _pooled_from_input(self, frames: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
        """``avgpool_{H,W}(Y)`` per frame ``[B·T, C]`` without ``M``, from the input and the kernels.

        The spatial mean of a convolution is linear in its input: with every kernel zero-padded to
        the largest size K (same centre, so the same 'same' output) and ``A[i, y] = 1`` where input
        row ``y`` meets kernel row ``i`` at some output row, ``mean_{h,w} M_n[c] =
        Σ_{c',y,x} X[c',y,x] · Σ_{i,j} W_n[c,c',i,j]·A[i,y]·A[j,x] / (H'·W')``. That is one small
        matmul, so the attention's gradient no longer runs through the full ``M``.
        """
        size = max(self.kernel_sizes)
        stride, pad = self.branches[0].stride[0], size // 2
        bt, cin, h, w = frames.shape
        ho, wo = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1

        def window(length: int, out: int) -> torch.Tensor:  # A: [K, length]
            offset = (
                torch.arange(length, device=frames.device)[None, :]
                + pad
                - torch.arange(size, device=frames.device)[:, None]
            )
            return ((offset % stride == 0) & (offset >= 0) & (offset < stride * out)).to(frames.dtype)

        mean_kernel = sum(torch.nn.functional.pad(wt, ((size - wt.shape[-1]) // 2,) * 4) for wt in weights) / len(
            weights
        )
        pixel_weight = torch.einsum("ocij,iy,jx->ocyx", mean_kernel, window(h, ho), window(w, wo)) / (ho * wo)
        return frames.reshape(bt, -1) @ pixel_weight.reshape(pixel_weight.shape[0], -1).T

    def attention(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax weights ``W_α [B, N, T]`` and ``W_β [B, N, T, C]`` from ``M [B, N, C, H, W, T]``."""
        return self._attention(m.mean(dim=(1, 3, 4)).transpose(1, 2))  # avgpool_{H,W}(mean_n M_n): [B, T, C]

    def fold(
        self, scale: torch.Tensor, per_timestep: bool = True, quantized: bool = True
    ) -> tuple[list[torch.nn.Module], float]:
        """One :class:`~train.models.folded.FoldedConv`: the branches merged (``s ≈ g·r``), gain ``g``."""
        kernels = [b.pre_hook_fx(b.weight).detach()[..., 0] for b in self.branches]
        f = fold(kernels, scale)
        synapse = self.branches[0]
        site = Site(self.neuron, synapse.in_channels, synapse.out_channels, synapse.stride[0], self.timesteps)
        stage = folded_conv(f.kernel, f.gain, site, per_timestep, quantized)
        return [stage], f.rel_error

    def current(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The neuron's input ``Z [B, C, H, W, T]``; a fixed ``scale`` ``s[n, t, c]`` replaces W_α·W_β.

        ``scale`` may be ``[N, T, C]`` or per sample ``[B, N, T, C]``; with it, no attention is
        computed, AZO is not applied and ``last_attention`` is left as it was.
        """
        frames, weights = self._frames(x), self._weights()
        m = self._branch_frames(frames, weights)  # N × [B·T, C, H', W']
        b = x.shape[0]
        return self.weighted_sum(m, lambda: self._pooled_from_input(frames, weights).unflatten(0, (b, -1)), scale, b)


def scale_sum(m: list[torch.Tensor], s: torch.Tensor, zoneout: torch.Tensor | None = None) -> torch.Tensor:
    """``Z = Σ_n M_n · s_n`` (eq. 12) per frame, with AZO's replaced slices when ``zoneout`` is given.

    ``m`` holds the N branch currents ``[B·T, C, H, W]`` (frame ``b·T + t``), ``s`` is
    ``[B·T, N, C]`` and ``zoneout`` a mask ``[B, T, N, C]``; ``Z`` is ``[B·T, C, H, W]``. A replaced
    slice (n, t, c) takes ``M_n[t-1]·s[n, t-1, c]`` instead of ``M_n[t]·s[n, t, c]`` (Algorithm 1);
    AZO replaces δt·δc of T·C slices per scale (1/64 with the paper's settings), so that is a
    sparse correction of the plain sum.
    """
    if zoneout is None:
        rows = s.new_zeros(0, 3, dtype=torch.long)
    else:
        b, t, n, c = zoneout.shape
        where = zoneout.nonzero()  # [K, 4] (b, t, n, c); t >= 1 always
        rows = torch.stack([where[:, 0] * t + where[:, 1], where[:, 2], where[:, 3]], dim=1)  # (frame, n, c)
    return _ScaleSum.apply(s.contiguous(), rows, *m)


class _ScaleSum(torch.autograd.Function):
    """``scale_sum`` with a hand-written backward.

    The branches stay separate tensors (no stacked ``M``: stacking copies it, and its gradient is
    copied apart again for the convolutions), and AZO's rows are gathered and added in place
    instead of through full-size zero tensors (with the input-side pooling: the block's current,
    forward and backward, measured 1.24× faster).
    """

    @staticmethod
    def forward(ctx, s, rows, *m):  # type: ignore[override]
        ctx.save_for_backward(s, rows, *m)
        z = m[0] * s[:, 0, :, None, None]
        for n in range(1, len(m)):
            z.addcmul_(m[n], s[:, n, :, None, None])
        for n, frame, ch in _rows_by_scale(rows, len(m)):
            z.index_put_(
                (frame, ch),
                m[n][frame - 1, ch] * s[frame - 1, n, ch, None, None] - m[n][frame, ch] * s[frame, n, ch, None, None],
                accumulate=True,
            )
        return z

    @staticmethod
    def backward(ctx, gz):  # type: ignore[override]
        s, rows, *m = ctx.saved_tensors
        # ∂Z arrives in the neuron's T-last layout: one copy into the branches' layout makes every
        # product below, and the convolutions' backward, run on aligned memory.
        gz = gz.contiguous()
        gs = torch.stack([(gz * mn).sum(dim=(2, 3)) for mn in m], dim=1) if ctx.needs_input_grad[0] else None
        gm = [gz * s[:, n, :, None, None] if ctx.needs_input_grad[2 + n] else None for n in range(len(m))]
        for n, frame, ch in _rows_by_scale(rows, len(m)):
            g = gz[frame, ch]  # ∂Z of each replaced slice's output, [K, H, W]
            if gm[n] is not None:
                gm[n].index_put_((frame - 1, ch), g * s[frame - 1, n, ch, None, None], accumulate=True)
                gm[n].index_put_((frame, ch), -g * s[frame, n, ch, None, None], accumulate=True)
            if gs is not None:
                gs.index_put_(
                    (frame - 1, torch.full_like(ch, n), ch), (g * m[n][frame - 1, ch]).sum(dim=(1, 2)), accumulate=True
                )
                gs.index_put_(
                    (frame, torch.full_like(ch, n), ch), -(g * m[n][frame, ch]).sum(dim=(1, 2)), accumulate=True
                )
        return (gs, None, *gm)


def _rows_by_scale(rows: torch.Tensor, scales: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """AZO's ``(frame, n, c)`` rows as ``(n, frames, channels)`` per scale that has any."""
    for n in range(scales):
        pick = rows[rows[:, 1] == n]
        if pick.numel():
            yield n, pick[:, 0], pick[:, 2]
