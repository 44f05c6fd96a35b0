"""Train-time augmentation of spike tensors ``[2, H, W, T]`` that keeps labels valid.

Applied per sample in the training loader (after the cache, so every epoch sees new draws);
uses torch's RNG, so ``torch.manual_seed`` and DataLoader worker seeding make it repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from chipnet.errors import DatasetError


@dataclass
class Augment:
    """Random translation (zero fill), optional horizontal mirror, spike dropout."""

    max_shift: int = 0  # pixels, each axis, uniform in [-max_shift, max_shift]
    hflip: bool = False  # only for datasets whose classes survive mirroring (``hflip_safe``)
    drop: float = 0.0  # probability of deleting each spike

    def __post_init__(self) -> None:
        if self.max_shift < 0 or not 0.0 <= self.drop < 1.0:
            raise DatasetError(f"augment: need max_shift >= 0 and 0 <= drop < 1, got {self}")

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> "Augment | None":
        """An Augment from a config mapping; ``None`` when it asks for nothing."""
        if not options:
            return None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise DatasetError(f"augment: unknown option(s) {unknown}; known: {sorted(known)}")
        aug = cls(**options)
        return aug if aug.active else None

    @property
    def active(self) -> bool:
        """Whether this changes anything."""
        return self.max_shift > 0 or self.hflip or self.drop > 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A randomly augmented copy of one sample ``x`` ``[2, H, W, T]``."""
        if self.max_shift > 0:
            dy, dx = (int(v) for v in torch.randint(-self.max_shift, self.max_shift + 1, (2,)))
            x = _shift(_shift(x, dy, dim=1), dx, dim=2)
        if self.hflip and bool(torch.rand(()) < 0.5):
            x = torch.flip(x, dims=(2,))
        if self.drop > 0:
            x = x * (torch.rand(x.shape) >= self.drop).to(x.dtype)
        return x


def _shift(x: torch.Tensor, offset: int, dim: int) -> torch.Tensor:
    """``x`` moved by ``offset`` along ``dim``; what moves out is lost, what comes in is zero."""
    if offset == 0:
        return x
    out = torch.zeros_like(x)
    n = x.shape[dim]
    if abs(offset) >= n:
        return out
    src = x.narrow(dim, max(-offset, 0), n - abs(offset))
    out.narrow(dim, max(offset, 0), n - abs(offset)).copy_(src)
    return out
