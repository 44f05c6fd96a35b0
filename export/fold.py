"""Fold SMA's data-dependent attention into fixed weights (DESIGN.md, "Folding for the chip").

Calibration gives the mean attention product ``s[n, t, c] = E_x[W_α[n, t] · W_β[n, t, c]]``.
It is factored as ``s[n, t, c] ≈ g[t, c] · r[n, c]`` with ``r = mean_t s`` and
``g = Σ_n s / Σ_n r``, which keeps ``Σ_n s`` exact at every (t, c). Then the N branch kernels
merge into one ``K_c = Σ_n r[n, c] · pad(K_{n, c})`` and ``g`` becomes a per-timestep,
per-channel gain on the neuron's input current.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Fold:
    """The static form of one SMA layer."""

    kernel: torch.Tensor  # [Cout, Cin, K, K], K = the largest branch kernel
    gain: torch.Tensor  # [T, Cout]
    scale: torch.Tensor  # r: [N, Cout]
    rel_error: float  # ||s - g·r|| / ||s||


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


def quantize_gain(gain: torch.Tensor, mant_bits: int = 12) -> tuple[np.ndarray, int]:
    """Integer gain ``mant / 2**exp`` (mantissa in ``[0, 2**mant_bits)``) closest to ``gain``.

    Picks the largest shift that keeps every mantissa in range, so small gains keep precision.
    """
    g = gain.detach().double().cpu().numpy()
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError("gains must be finite and non-negative")
    top = (1 << mant_bits) - 1
    peak = float(g.max()) if g.size else 0.0
    exp = 15
    while exp > 0 and np.round(peak * (1 << exp)) > top:
        exp -= 1
    mant = np.clip(np.round(g * (1 << exp)), 0, top).astype(np.int32)
    return mant, exp
