"""Fold data-dependent attention into fixed weights (docs/design.md, "SMA and its fold", "MA attention").

SMA: calibration gives the mean attention product ``s[n, t, c] = E_x[W_α[n, t] · W_β[n, t, c]]``.
It is factored as ``s[n, t, c] ≈ g[t, c] · r[n, c]`` with ``r = mean_t s`` and
``g = Σ_n s / Σ_n r``, which keeps ``Σ_n s`` exact at every (t, c). Then the N branch kernels
merge into one ``K_c = Σ_n r[n, c] · pad(K_{n, c})`` and ``g`` becomes a per-timestep,
per-channel gain on the neuron's input current.

MA (TCA): the attention scales one conv's current by ``a_t · a_c``; its calibrated mean
``g[t, c] = E_x[a_t · a_c]`` is the gain itself and the kernel stays as trained (no factorisation).
Both then go through one deployable form (:func:`folded_conv`): range filling and a FoldedConv.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from chipnet.chip import BIAS_RANGE, FILE_WEIGHT_RANGE, VTH_MAX, W_SCALE
from train.models.attention import AttentionBlock
from train.models.folded import FoldedConv
from train.models.norm import AffineBatchNorm, chip_norm, fold_affine, neuron_bias, scale_neuron

if TYPE_CHECKING:
    from train.models.sma_spiking import SpikingSMAConv

WEIGHT_LIMIT = FILE_WEIGHT_RANGE[1] / W_SCALE  # largest weight SLAYER's quantize_8bit (and NetX) keeps, in float units


@dataclass
class Fold:
    """The static form of one SMA layer."""

    kernel: torch.Tensor  # [Cout, Cin, K, K], K = the largest branch kernel
    gain: torch.Tensor  # [T, Cout]
    scale: torch.Tensor  # r: [N, Cout]
    rel_error: float  # ||s - g·r|| / ||s||


@dataclass(frozen=True, eq=False)
class Site:
    """Where a folded conv sits: the neuron it drives, its channels and stride, the sample's timesteps, its groups."""

    neuron: torch.nn.Module
    in_channels: int
    out_channels: int
    stride: int
    timesteps: int
    groups: int = 1


def factorize(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Split ``s[n, t, c]`` into ``g[t, c] · r[n, c]``; returns ``(g, r, relative error)``."""
    if s.dim() != 3:
        raise ValueError(f"attention statistics must be [N, T, C], got {tuple(s.shape)}")
    r = s.mean(dim=1)  # [N, C]
    g = s.sum(dim=0) / r.sum(dim=0).clamp_min(torch.finfo(s.dtype).tiny)  # [T, C]
    approx = g.unsqueeze(0) * r.unsqueeze(1)
    err = float(torch.linalg.vector_norm(s - approx) / torch.linalg.vector_norm(s).clamp_min(1e-30))
    return g, r, err


def merge_kernels(kernels: list[torch.Tensor], r: torch.Tensor) -> torch.Tensor:
    """``Σ_n r[n, c] · pad(K_n)[c]``: N odd-sized kernels ``[Cout, Cin, k, k]`` → one of the largest size."""
    size = max(k.shape[-1] for k in kernels)
    merged = torch.zeros(kernels[0].shape[0], kernels[0].shape[1], size, size, dtype=kernels[0].dtype)
    for n, k in enumerate(kernels):
        if k.shape[-1] % 2 == 0 or k.shape[-1] != k.shape[-2]:
            raise ValueError(f"branch {n}: 'same' padding needs odd square kernels, got {tuple(k.shape[-2:])}")
        p = (size - k.shape[-1]) // 2
        merged += r[n].view(-1, 1, 1, 1) * F.pad(k, (p, p, p, p))
    return merged


def fold(kernels: list[torch.Tensor], s: torch.Tensor) -> Fold:
    """Static form of an SMA layer from its branch kernels and calibrated ``s[n, t, c]``."""
    if len(kernels) != s.shape[0]:
        raise ValueError(f"{len(kernels)} branch kernels but attention statistics for {s.shape[0]} scales")
    g, r, err = factorize(s.to(torch.float64))
    kernel = merge_kernels([k.to(torch.float64) for k in kernels], r)
    return Fold(kernel.float(), g.float(), r.float(), err)


def calibrate(net: torch.nn.Module, batches: Iterable[torch.Tensor], device: str = "cpu") -> list[torch.Tensor]:
    """Mean attention scale of every attention block over ``batches`` (eval mode).

    ``s[n, t, c]`` (``E[W_α W_β]``) for an SMA block, ``g[t, c]`` (``E[a_t a_c]``) for an MA block:
    each block's :meth:`attention_scale`, averaged over samples.
    """
    blocks = attention_blocks(net)
    sums = [None] * len(blocks)
    count = 0
    net.eval()
    with torch.no_grad():
        for x in batches:
            net(x.to(device))
            for i, block in enumerate(blocks):
                s = block.attention_scale().sum(0).double().cpu()
                sums[i] = s if sums[i] is None else sums[i] + s
            count += x.shape[0]
    if count == 0:
        raise ValueError("calibration needs at least one sample")
    return [s / count for s in sums]


def calibrate_on(net: torch.nn.Module, spikes: np.ndarray, batch_size: int = 32) -> list[torch.Tensor]:
    """:func:`calibrate` over spike samples ``[N, C, H, W, T]`` (e.g. a split's ``.spikes``)."""
    return calibrate(
        net,
        (torch.from_numpy(spikes[i : i + batch_size].astype(np.float32)) for i in range(0, len(spikes), batch_size)),
    )


def sma_blocks(net: torch.nn.Module) -> list[AttentionBlock]:
    """The SMA blocks of a network (either form), in order."""
    return [b for b in attention_blocks(net) if b.kind == "sma"]


def attention_blocks(net: torch.nn.Module) -> list[AttentionBlock]:
    """The blocks export folds (every :class:`~train.models.attention.AttentionBlock`), in order."""
    return [b for b in net.blocks if isinstance(b, AttentionBlock)]


def check_foldable(net: torch.nn.Module) -> None:
    """Raise :class:`FoldError` naming the first attention layer that has no exact folded form.

    Each block says for itself (:meth:`~train.models.attention.AttentionBlock.check_deployable`);
    e.g. MA's spatial attention (TCSA) scales the current by a map ``a_s[t, h, w]`` per output
    position, and a NetX conv layer shares its kernel across positions with a per-channel gain.
    """
    for i, block in enumerate(net.blocks):
        if isinstance(block, AttentionBlock):
            block.check_deployable(f"conv layer {i}")


def range_shift(peak: float, limit: float = WEIGHT_LIMIT) -> int:
    """The power of two ``shift`` with ``peak / 2**shift`` as large as possible but ``<= limit``.

    Positive shifts scale a kernel down, negative ones up (0 for an all-zero kernel).
    """
    return math.ceil(math.log2(peak / limit)) if peak > 0 else 0


def fold_block(
    block: AttentionBlock, s: torch.Tensor, per_timestep: bool = True, quantized: bool = True
) -> tuple[FoldedConv, float]:
    """The deployable :class:`FoldedConv` of an attention block that folds into one layer, and the fold's error.

    Kernels are taken as the chip holds them (after ``quantize_8bit``); ``per_timestep`` False
    folds the time-averaged gain into the kernel instead (stock NetX, no gain schedule).
    ``quantized`` False keeps the kernel and the gain in float (export's ``folded_float``).
    An SMA block's error is its factorisation's; an MA block's mean ``g[t, c]`` is the gain
    itself (error 0). Blocks that deploy as several layers: :func:`fold_network`.
    """
    stages, err = block.fold(s, per_timestep, quantized)
    if len(stages) != 1:
        raise ValueError(f"{type(block).__name__} deploys as {len(stages)} layers: fold it with fold_network")
    return stages[0], err


def _holding(kernel: torch.Tensor, gain: torch.Tensor, site: Site, per_timestep: bool, quantized: bool) -> FoldedConv:
    """A :class:`FoldedConv` ('same' padding) whose synapse holds ``kernel`` as it is."""
    size = kernel.shape[-1]
    conv = FoldedConv(
        {},
        site.in_channels,
        site.out_channels,
        size,
        site.timesteps,
        stride=site.stride,
        padding=size // 2,
        gain=gain,
        per_timestep=per_timestep,
        neuron=site.neuron,
        quantized=quantized,
        groups=site.groups,
    )
    with torch.no_grad():
        conv.synapse.weight.copy_(kernel[..., None])
    return conv


def folded_conv(
    kernel: torch.Tensor, gain: torch.Tensor, site: Site, per_timestep: bool = True, quantized: bool = True
) -> FoldedConv:
    """A :class:`FoldedConv` ('same' padding) of a float ``kernel [Cout, Cin/groups, K, K]`` and gain ``[T, Cout]``.

    ``per_timestep`` False moves the gain's time mean into the kernel. The kernel is scaled by a
    power of two that fills the 8-bit weight range before it is rounded, taken back exactly.
    """
    neuron = site.neuron
    if not per_timestep:
        kernel = kernel * gain.mean(dim=0).view(-1, 1, 1, 1)
        gain = torch.ones_like(gain)
    # The kernel is scaled by a power of two to fill the 8-bit weight range before it is rounded:
    # attention weights are at most 1 (SMA's sum to at most 1 over the scales, MA's sigmoids are
    # below 1), so a merged or gain-scaled kernel is usually *smaller* than the trained one and
    # would lose most of its bits otherwise. Scaling up is taken back by the threshold (exact:
    # integer threshold times 2**k, finer state rounding). Scaling down is taken back by the gain
    # (per-timestep) or, without one, the threshold.
    shift = range_shift(float(kernel.abs().max()))
    if shift < 0:
        headroom = int(math.floor(math.log2(VTH_MAX / max(1, neuron.v_th_mant))))
        bias = neuron_bias(neuron)
        if bias is not None and bool(bias.abs().max() > 0):  # a bias scales with the kernel: 13 bits bound it too
            headroom = min(headroom, int(math.floor(math.log2(BIAS_RANGE[1] / float(bias.abs().max())))))
        shift = max(shift, -max(0, headroom))  # the 17-bit threshold register bounds the up-scaling
    if neuron.norm is not None and neuron_bias(neuron) is None and (shift < 0 or not per_timestep):
        # A trained norm (deploy-aware fine-tuning folds the trained model) would need its running
        # statistics rescaled too: no up-scaling then, and a static kernel must not outgrow the range.
        if shift > 0:
            raise ValueError(
                "static fold of a normalised attention layer whose kernel outgrows the 8-bit range: "
                "fold the network's chip form (train.models.norm.chip_norms) instead"
            )
        shift = 0
    kernel = kernel / 2**shift
    if shift > 0 and per_timestep:
        gain = gain * 2**shift
    folded = _holding(kernel, gain, site, per_timestep, quantized)
    if shift < 0 or (shift > 0 and not per_timestep):
        scale_neuron(folded, 2.0**-shift)
    return folded


def fold_spiking(
    block: SpikingSMAConv, s: torch.Tensor, per_timestep: bool = True, quantized: bool = True
) -> tuple[list[FoldedConv], float]:
    """The two chip layers of a spiking-form SMA block, and the factorisation's relative error.

    1. The branches: one conv ``Cin → N·C`` with the composed kernels (``composed_kernel``) and the
       branch neurons (their norm folded), a stock NetX conv layer.
    2. The attention: ``s ≈ g·r`` as for the linear form; a grouped 1×1 conv ``N·C → C`` (groups
       ``C``, weight ``r[n, c]`` on input ``c·N + n``) with the gain ``g[t, c]`` and the output neuron.

    The block's norms are folded here, stage by stage (``chip_norms`` leaves the block as trained):
    a batch norm's scale into the stage's weights, its shift into the neuron bias.
    """
    n, c = len(block.branches), block.out_channels
    if tuple(s.shape) != (n, block.timesteps, c):
        raise ValueError(f"SMA attention statistics must be [N, T, C] = {[n, block.timesteps, c]}, got {list(s.shape)}")
    g, r, err = factorize(s.to(torch.float64))
    kernel = block.composed_kernel().detach().double()
    cin = block.lead.in_channels
    branches = chip_stage(
        kernel, None, Site(block.branch_neuron, cin, n * c, block.stride, block.timesteps), False, quantized
    )
    site = Site(block.neuron, n * c, c, 1, block.timesteps, groups=c)
    attention = chip_stage(r.t().reshape(c, n, 1, 1), g, site, per_timestep, quantized)
    return [branches, attention], err


def chip_stage(
    kernel: torch.Tensor, gain: torch.Tensor | None, site: Site, per_timestep: bool, quantized: bool
) -> FoldedConv:
    """One :class:`FoldedConv` of a float kernel and gain whose ``neuron`` still has its trained norm.

    ``quantized`` False keeps the norm and float weights (``folded_float``). Otherwise a batch norm
    is folded into the weights and the bias (:func:`~train.models.norm.fold_affine`, which also fills
    the weight range), any other norm takes its chip form and :func:`folded_conv` fills the range.
    """
    gain = torch.ones(site.timesteps, site.out_channels, dtype=kernel.dtype) if gain is None else gain
    if not per_timestep:
        kernel, gain = kernel * gain.mean(dim=0).view(-1, 1, 1, 1), torch.ones_like(gain)
    stage = _holding(kernel.float(), gain.float(), site, per_timestep, False)
    if not quantized:
        return stage
    if isinstance(stage.neuron.norm, AffineBatchNorm):
        fold_affine(stage)  # weights and threshold scaled to fill the 8-bit range, bias on its grid
        stage.quantize()
        return stage
    chip_norm(stage)
    weight = stage.synapse.weight.detach()[..., 0]
    return folded_conv(weight, stage.gain.detach(), dataclasses.replace(site, neuron=stage.neuron), per_timestep, True)


def fold_network(
    net: torch.nn.Module, stats: list[torch.Tensor], per_timestep: bool = True, quantized: bool = True
) -> tuple[torch.nn.Module, list[float]]:
    """A copy of ``net`` with every attention block replaced by its folded form; also the errors.

    A spiking-form SMA block becomes two layers (:func:`fold_spiking`). Raises :class:`FoldError`
    for a layer without an exact folded form (:func:`check_foldable`).
    """
    check_foldable(net)
    folded = copy.deepcopy(net)
    errors = []
    blocks: list[torch.nn.Module] = []
    for block in folded.blocks:
        if not isinstance(block, AttentionBlock):
            blocks.append(block)
            continue
        stages, err = block.fold(stats[len(errors)], per_timestep, quantized)
        blocks.extend(stages)
        errors.append(err)
    folded.blocks = torch.nn.ModuleList(blocks)
    return folded.eval(), errors
