"""SynthGesture: a procedurally generated, DVS128-Gesture-like event dataset (no download).

Eleven motion classes modelled on DVS128 Gesture's (claps, waves, arm circles, drums, guitar,
other) are drawn as bright blobs on a dark background, rendered at sub-frame rate, and turned
into ON/OFF events by a per-pixel log-intensity change detector (the DVS pixel model), plus
uniform background noise. Direction matters (clockwise vs counter-clockwise), and only the
polarity of the edges tells them apart, as on a real DVS.

Every sample is a pure function of ``(seed, split, index)``, so the dataset is identical on
every machine and needs no cache to be reproducible.
"""

from __future__ import annotations

import numpy as np

from chipnet.events import make_events
from train.data.dataset import EventDataset
from train.data.dvsgesture import CLASSES  # the same eleven gestures, in DVS128 Gesture's order

_SPLIT_IDS = {"train": 0, "test": 1}


def _trajectories(label: int, u: np.ndarray, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Blob centres (x, y) in [0, 1] image coordinates (y down) over normalised time ``u``."""
    f = rng.uniform(1.5, 2.5)  # cycles per sample
    ph = rng.uniform(0, 2 * np.pi)
    amp = rng.uniform(0.85, 1.15)
    ox, oy = rng.uniform(-0.05, 0.05, size=2)
    w = 2 * np.pi * f * u + ph

    def circle(cx: float, cy: float, r: float, sign: float) -> tuple[np.ndarray, np.ndarray]:
        # With y pointing down, increasing angle turns clockwise on screen.
        return cx + ox + r * amp * np.cos(sign * w), cy + oy + r * amp * np.sin(sign * w)

    if label == 0:  # hand clap: two hands meet in the middle and part again
        d = 0.06 + 0.12 * amp * (1 + np.cos(w)) / 2
        return [(0.5 + ox - d, 0.5 + oy + 0 * u), (0.5 + ox + d, 0.5 + oy + 0 * u)]
    if label in (1, 2):  # hand wave, on the right or left of the frame
        cx = 0.7 if label == 1 else 0.3
        return [(cx + ox + 0.12 * amp * np.sin(w), 0.35 + oy + 0.02 * np.sin(2 * w))]
    if label in (3, 4, 5, 6):  # arm circles
        cx = 0.68 if label in (3, 4) else 0.32
        sign = 1.0 if label in (3, 5) else -1.0
        return [circle(cx, 0.5, 0.16, sign)]
    if label == 7:  # arm roll: two hands orbit each other in front of the chest
        a = circle(0.5, 0.55, 0.08, 1.0)
        return [a, (2 * (0.5 + ox) - a[0], 2 * (0.55 + oy) - a[1])]
    if label == 8:  # air drums: hands go up and down in turn
        s = 0.12 * amp * np.sin(w)
        return [(0.35 + ox + 0 * u, 0.6 + oy + s), (0.65 + ox + 0 * u, 0.6 + oy - s)]
    if label == 9:  # air guitar: one hand still-ish on the neck, the other strums fast
        return [
            (0.35 + ox + 0.02 * np.sin(w), 0.45 + oy + 0 * u),
            (0.62 + ox + 0 * u, 0.62 + oy + 0.08 * amp * np.sin(2.5 * w)),
        ]
    # other: a smooth random walk
    k = np.arange(1, 4)[:, None]
    cx = 0.5 + ox + (rng.uniform(-0.08, 0.08, (3, 1)) * np.sin(2 * np.pi * k * u + rng.uniform(0, 6, (3, 1)))).sum(0)
    cy = 0.5 + oy + (rng.uniform(-0.08, 0.08, (3, 1)) * np.cos(2 * np.pi * k * u + rng.uniform(0, 6, (3, 1)))).sum(0)
    return [(cx, cy)]


class SynthGesture(EventDataset):
    """Procedural DVS gesture dataset: ``dataset[i] -> (events, label)``.

    Parameters
    ----------
    split: ``"train"`` or ``"test"``.
    samples_per_class: samples of each class in this split.
    seed: changes every sample; the same seed always gives the same events.
    """

    name = "synthgesture"
    sensor_size = (128, 128, 2)
    classes = CLASSES
    duration_us = 1_000_000
    substeps = 48  # rendered frames per sample; events get sub-frame timestamps
    threshold = 0.25  # log-intensity contrast threshold of a pixel
    noise_rate = 0.02  # background events per pixel per sample

    def __init__(self, split: str = "train", samples_per_class: int = 40, seed: int = 0) -> None:
        if split not in _SPLIT_IDS:
            raise ValueError(f"{self.name}: unknown split {split!r}; expected one of {sorted(_SPLIT_IDS)}")
        self.split = split
        self.samples_per_class = samples_per_class
        self.seed = seed
        self.targets = np.arange(len(self)) % len(CLASSES)

    def __len__(self) -> int:
        return self.samples_per_class * len(CLASSES)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        label = int(self.targets[index])
        rng = np.random.default_rng([self.seed, _SPLIT_IDS[self.split], index])
        return self._render(label, rng), label

    def _render(self, label: int, rng: np.random.Generator) -> np.ndarray:
        width, height, _ = self.sensor_size
        u = np.linspace(0.0, 1.0, self.substeps + 1)
        blobs = _trajectories(label, u, rng)
        radius = rng.uniform(0.05, 0.075) * width
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ref = None
        xs, ys, ps, ts = [], [], [], []
        dt = self.duration_us / self.substeps
        for k in range(self.substeps + 1):
            intensity = np.zeros((height, width), np.float32)
            for bx, by in blobs:
                d = np.hypot(xx - bx[k] * width, yy - by[k] * height)
                intensity = np.maximum(intensity, np.clip(radius - d + 0.5, 0.0, 1.0))
            log_i = np.log(0.1 + intensity)
            if ref is None:
                ref = log_i
                continue
            diff = log_i - ref
            fired = np.abs(diff) >= self.threshold
            y, x = np.nonzero(fired)
            xs.append(x)
            ys.append(y)
            ps.append((diff[fired] > 0).astype(np.int8))
            ts.append(((k - 1) + rng.random(len(x))) * dt)
            ref = np.where(fired, log_i, ref)
        n_noise = rng.poisson(self.noise_rate * width * height)
        xs.append(rng.integers(0, width, n_noise))
        ys.append(rng.integers(0, height, n_noise))
        ps.append(rng.integers(0, 2, n_noise).astype(np.int8))
        ts.append(rng.random(n_noise) * self.duration_us)
        t = np.minimum(np.concatenate(ts).astype(np.int64), self.duration_us - 1)
        return make_events(np.concatenate(xs), np.concatenate(ys), np.concatenate(ps), t)
