"""Attention Zoneout (AZO, the paper's Algorithm 1) for the SMA block's per-scale currents.

In training, for every sample and every scale ``n``: the ``delta_t`` timesteps with the smallest
temporal attention ``W_α[n, t]`` are picked, and at each of them the ``delta_c`` channels with the
smallest channel attention ``W_β[n, t, c]``; those (t, c) slices of the scale's weighted current
``W_α·W_β·M_n`` take the value they had at ``t - 1``. In ``eval()`` it is the identity, so nothing
of it reaches an exported network.

Two choices where the paper leaves room (both stated in the README of the model):

- Algorithm 1 skips a picked ``t = 0`` (no previous step). We pick among ``t >= 1`` only, so every
  training step replaces exactly ``delta_t · delta_c`` slices per sample and scale.
- Selection is per sample, as Algorithm 1 is written (the authors' code pools it over the batch).
"""

from __future__ import annotations

import torch


def paper_deltas(timesteps: int, channels: int) -> tuple[int, int]:
    """The reference setting of the authors' DVS Gesture code: δt = T // 4, δc = C // 10 (≥ 1)."""
    return max(1, timesteps // 4), max(1, channels // 10)


def zoneout_mask(w_alpha: torch.Tensor, w_beta: torch.Tensor, delta_t: int, delta_c: int) -> torch.Tensor:
    """Boolean mask ``[B, N, T, C]`` of the (t, c) slices AZO replaces (never t = 0).

    ``w_alpha`` is ``[B, N, T]`` and ``w_beta`` ``[B, N, T, C]``, the SMA block's softmax weights.
    """
    b, n, t, c = w_beta.shape
    if w_alpha.shape != (b, n, t):
        raise ValueError(
            f"AZO: temporal attention {tuple(w_alpha.shape)} does not match channel attention {tuple(w_beta.shape)}"
        )
    if not 1 <= delta_t <= t - 1 or not 1 <= delta_c <= c:
        raise ValueError(
            f"AZO: need 1 <= delta_t <= T-1 = {t - 1} and 1 <= delta_c <= C = {c}, got {delta_t}, {delta_c}"
        )
    # t = 0 has no previous step: leave it out of the candidates instead of skipping it later.
    steps = torch.topk(w_alpha[..., 1:], delta_t, dim=-1, largest=False).indices + 1  # [B, N, δt]
    picked = torch.gather(w_beta, 2, steps[..., None].expand(b, n, delta_t, c))  # [B, N, δt, C]
    chans = torch.topk(picked, delta_c, dim=-1, largest=False).indices  # [B, N, δt, δc]
    rows = torch.zeros(b, n, delta_t, c, dtype=torch.bool, device=w_beta.device)
    rows.scatter_(-1, chans, True)
    mask = torch.zeros(b, n, t, c, dtype=torch.bool, device=w_beta.device)
    mask.scatter_(2, steps[..., None].expand(b, n, delta_t, c), rows)
    return mask


def zoneout(u: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``u [B, N, C, H, W, T]`` with the slices of ``mask [B, N, T, C]`` set to their value at t−1."""
    previous = torch.cat([u[..., :1], u[..., :-1]], dim=-1)  # previous[..., t] = u[..., t-1]
    where = mask.permute(0, 1, 3, 2)[:, :, :, None, None, :]  # → [B, N, C, 1, 1, T]
    return torch.where(where, previous, u)


class AttentionZoneout(torch.nn.Module):
    """AZO as a module: ``forward(u, w_alpha, w_beta)`` in training, identity in eval."""

    def __init__(self, delta_t: int, delta_c: int) -> None:
        super().__init__()
        self.delta_t, self.delta_c = int(delta_t), int(delta_c)
        self.last_mask: torch.Tensor | None = None  # of the last training forward, for tests and plots

    def extra_repr(self) -> str:
        return f"delta_t={self.delta_t}, delta_c={self.delta_c}"

    def select(self, w_alpha: torch.Tensor, w_beta: torch.Tensor) -> torch.Tensor:
        """The mask ``[B, N, T, C]`` of slices to replace (kept in ``last_mask``)."""
        # Which slices to replace is a selection, not something to differentiate through.
        self.last_mask = zoneout_mask(w_alpha.detach(), w_beta.detach(), self.delta_t, self.delta_c)
        return self.last_mask

    def forward(self, u: torch.Tensor, w_alpha: torch.Tensor, w_beta: torch.Tensor) -> torch.Tensor:
        """Weighted per-scale currents ``u [B, N, C, H, W, T]`` after zoneout (training only)."""
        if not self.training:
            return u
        return zoneout(u, self.select(w_alpha, w_beta))
