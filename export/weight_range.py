"""Fill each layer's 8-bit weight range: weights and threshold scaled by one power of two.

A layer whose largest integer weight is 36 of 254 carries 6 of its 8 bits. Scaling its weights
by ``2**k`` and its threshold by the same factor leaves the neuron's decision unchanged in exact
arithmetic (u and v scale with the input) and makes the chip's fixed point finer: its 12-bit
decays truncate states that are ``2**k`` larger. The weights were trained on SLAYER's 8-bit grid,
so the scaled integers are exact multiples of the trained ones.
"""

from __future__ import annotations

import copy

import torch

from chipnet.chip import BIAS_RANGE, FILE_WEIGHT_RANGE, VTH_MAX, W_SCALE
from train.models.norm import chip_bias, scale_neuron


def range_exponent(low: float, high: float, vth_mant: int, bias_peak: float = 0.0) -> int:
    """Largest ``k >= 0`` with ``[low, high]·2**k`` inside the file's weight range, ``vth·2**k`` in 17
    bits and the largest bias magnitude ``bias_peak·2**k`` in the 13-bit bias register."""
    lo, hi = FILE_WEIGHT_RANGE
    up, down = max(high, 0.0), max(-low, 0.0)
    if up == 0 and down == 0:
        return 0  # an all-zero layer has nothing to fill
    k = 0
    while (
        up * 2 ** (k + 1) <= hi
        and down * 2 ** (k + 1) <= -lo
        and vth_mant * 2 ** (k + 1) <= VTH_MAX
        and bias_peak * 2 ** (k + 1) <= BIAS_RANGE[1]
    ):
        k += 1
    return k


def fill_weight_range(net: torch.nn.Module) -> tuple[torch.nn.Module, list[int]]:
    """A copy of ``net`` whose conv/dense blocks use their whole weight range; also each block's ``k``.

    A block's bias (the chip form of its norm, ``train.models.norm``) scales with its weights; a
    block whose norm is still the trained one (not :func:`~train.models.norm.chip_norms`) keeps ``k = 0``.
    """
    net = copy.deepcopy(net)
    shifts = []
    for block in net.blocks:
        syn = getattr(block, "synapse", None)
        if syn is None:
            continue
        norm = getattr(block.neuron, "norm", None)
        if getattr(block, "bias", None) is not None or (norm is not None and chip_bias(block) is None):
            shifts.append(0)
            continue
        bias = chip_bias(block)
        with torch.no_grad():
            weight = syn.pre_hook_fx(syn.weight) if syn.pre_hook_fx is not None else syn.weight
            ints = weight * W_SCALE
            peak = float(bias.abs().max()) if bias is not None and bias.numel() else 0.0
            k = range_exponent(float(ints.min()), float(ints.max()), int(block.neuron.v_th_mant), peak)
            if k:
                syn.weight.copy_(weight * 2**k)
                scale_neuron(block, 2**k)
        shifts.append(k)
    return net.eval(), shifts
