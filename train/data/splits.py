"""Seeded index splits: the validation hold-out and class-stratified subsets (calibration).

Both work on label (and group) arrays only, so they index the cached tensors of a split
without binning anything again; the same seed always gives the same indices.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from chipnet.errors import ConfigError


def _shares(counts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` split over classes in proportion to ``counts`` (largest remainder, so they sum to ``n``)."""
    exact = counts * (n / max(int(counts.sum()), 1))
    shares = np.floor(exact).astype(np.int64)
    # Equal remainders (balanced classes) are broken at random, not always towards class 0.
    order = np.lexsort((rng.permutation(len(counts)), -(exact - shares)))
    shares[order[: n - int(shares.sum())]] += 1
    return np.minimum(shares, counts)


def stratified_subset(labels: Sequence[int] | np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``n`` samples with the class proportions of ``labels``.

    ``n >= len(labels)`` gives every index.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if n < 0:
        raise ConfigError(f"stratified subset: need n >= 0, got {n}")
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    picked = [rng.permutation(np.flatnonzero(inverse == c))[:k] for c, k in enumerate(_shares(counts, n, rng))]
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.arange(0)


def validation_split(
    labels: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train_idx, val_idx)`` holding out ``fraction`` of a training split, seeded.

    With ``groups`` (DVS Gesture's users) whole groups are held out, never split between the two
    parts: ``round(fraction × groups)`` of them, at least one. Without, a class-stratified
    ``round(fraction × samples)`` samples, at least one. ``fraction == 0`` holds out nothing.
    """
    labels = np.asarray(labels)
    everything = np.arange(len(labels))
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {fraction!r}")
    if fraction == 0.0:
        return everything, np.arange(0)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(labels):
            raise ConfigError(f"validation split: {len(groups)} groups for {len(labels)} samples")
        names = np.unique(groups)
        k = max(1, round(fraction * len(names)))
        if k >= len(names):
            raise ConfigError(
                f"val_fraction {fraction} would hold out all {len(names)} training users; lower it or set it to 0"
            )
        held = np.random.default_rng(seed).permutation(names)[:k]
        val = np.isin(groups, held)
        return everything[~val], everything[val]
    k = max(1, round(fraction * len(labels)))
    if k >= len(labels):
        raise ConfigError(
            f"val_fraction {fraction} would hold out all {len(labels)} training samples; lower it or set it to 0"
        )
    val = stratified_subset(labels, k, seed)
    return np.setdiff1d(everything, val), val
