"""NDigits: scikit-learn's bundled handwritten digits (1797 images, 8×8, 16 grey levels) turned
into N-MNIST-like event streams by a small DVS emulator (no download).

Each digit is upscaled ×3 (bilinear) into the middle of a 34×34 sensor and moved in N-MNIST's
three saccades (a triangle, 100 ms each). A frame is rendered every ``frame_us``; each pixel
compares its log intensity with its reference and fires ``floor(|Δ| / θ)`` ON or OFF events
(θ has fixed-pattern mismatch across pixels), spread over the frame interval, then moves its
reference by the events it sent. Uniform background events model sensor noise.

The split is fixed: every 5th image of each class (in ``load_digits`` order, starting with the
first) is in test: 364 test, 1433 train, 35–37 test images per class. Every sample is a pure function of ``(seed, image index)``.
"""

from __future__ import annotations

import numpy as np

from chipnet.events import make_events
from train.data.dataset import EventDataset
from train.data.layout import check_split

_SACCADES = np.array([[0.0, 0.0], [3.5, 7.0], [7.0, 0.0], [0.0, 0.0]])  # pixel offsets, N-MNIST's triangle
_SCALE = 3


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    data = load_digits()
    return data.images.astype(np.float32) / 16.0, data.target.astype(np.int64)


def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Bilinear upscaling by an integer factor (pixel centres kept aligned)."""
    n = image.shape[0]
    coords = (np.arange(n * scale) + 0.5) / scale - 0.5
    i0 = np.clip(np.floor(coords).astype(int), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    w = np.clip(coords - i0, 0.0, 1.0)
    rows = image[i0] * (1 - w)[:, None] + image[i1] * w[:, None]
    return rows[:, i0] * (1 - w)[None, :] + rows[:, i1] * w[None, :]


def _shifted(canvas: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Frames ``[F, H, W]`` of ``canvas`` translated by sub-pixel ``(dx, dy)`` (bilinear, zero fill)."""
    h, w = canvas.shape
    padded = np.pad(canvas, 1)
    ix, iy = np.floor(dx).astype(int), np.floor(dy).astype(int)
    fx, fy = (dx - ix)[:, None, None], (dy - iy)[:, None, None]
    yy, xx = np.mgrid[0:h, 0:w]

    def at(oy: np.ndarray, ox: np.ndarray) -> np.ndarray:
        sy = np.clip(yy[None] - oy[:, None, None] + 1, 0, h + 1)
        sx = np.clip(xx[None] - ox[:, None, None] + 1, 0, w + 1)
        return padded[sy, sx]

    return (1 - fy) * ((1 - fx) * at(iy, ix) + fx * at(iy, ix + 1)) + fy * (
        (1 - fx) * at(iy + 1, ix) + fx * at(iy + 1, ix + 1)
    )


class NDigits(EventDataset):
    """Emulated-DVS handwritten digits: ``dataset[i] -> (events, label)``.

    Parameters
    ----------
    split: ``"train"`` or ``"test"`` (fixed split, see the module docstring).
    samples_per_class: keep only the first this many images of each class (``None``: all).
    seed: changes saccade jitter, pixel mismatch and noise; the same seed gives the same events.
    """

    name = "ndigits"
    sensor_size = (34, 34, 2)
    classes = tuple(str(d) for d in range(10))
    saccade_us = 100_000
    frame_us = 5_000
    threshold = 0.3  # log-intensity contrast threshold (mean over pixels)
    mismatch = 0.03  # std of the per-pixel threshold
    noise_per_pixel = 0.02  # background events per pixel per sample

    def __init__(self, split: str = "train", samples_per_class: int | None = None, seed: int = 0) -> None:
        check_split(self.name, split)
        self.split, self.seed = split, seed
        images, targets = _digits()
        rank = np.zeros(len(targets), dtype=np.int64)  # position of each image among its class
        for c in range(10):
            rank[targets == c] = np.arange(int((targets == c).sum()))
        index = np.flatnonzero((rank % 5 == 0) == (split == "test"))
        if samples_per_class is not None:
            index = np.concatenate([index[targets[index] == c][:samples_per_class] for c in range(10)])
            index.sort()
        self.images, self.targets, self.image_index = images[index], targets[index], index

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, int(self.image_index[index])])
        return self._emulate(self.images[index], rng), int(self.targets[index])

    def _emulate(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        width, height, _ = self.sensor_size
        digit = _upscale(image, _SCALE)
        canvas = np.zeros((height, width), np.float32)
        top, left = (height - digit.shape[0] - 7) // 2, (width - digit.shape[1] - 7) // 2
        canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
        per_saccade = self.saccade_us // self.frame_us
        u = np.arange(3 * per_saccade + 1) / per_saccade  # saccade progress, 0…3
        k = np.minimum(u.astype(int), 2)
        path = _SACCADES[k] + (u - k)[:, None] * (_SACCADES[k + 1] - _SACCADES[k])
        path = path + rng.normal(0.0, 0.15, path.shape)  # hand-held jitter of the mount
        log_i = np.log(0.2 + _shifted(canvas, path[:, 0], path[:, 1]))
        theta = np.maximum(rng.normal(self.threshold, self.mismatch, (height, width)), 0.05)
        ref = log_i[0].copy()
        xs, ys, ps, ts = [], [], [], []
        for f in range(1, len(log_i)):
            diff = log_i[f] - ref
            count = np.floor(np.abs(diff) / theta).astype(np.int64)
            y, x = np.nonzero(count)
            n = count[y, x]
            ref[y, x] += np.sign(diff[y, x]) * n * theta[y, x]
            xs.append(np.repeat(x, n))
            ys.append(np.repeat(y, n))
            ps.append(np.repeat((diff[y, x] > 0).astype(np.int8), n))
            ts.append((f - 1 + rng.random(int(n.sum()))) * self.frame_us)
        duration = 3 * self.saccade_us
        n_noise = rng.poisson(self.noise_per_pixel * width * height)
        xs.append(rng.integers(0, width, n_noise))
        ys.append(rng.integers(0, height, n_noise))
        ps.append(rng.integers(0, 2, n_noise).astype(np.int8))
        ts.append(rng.random(n_noise) * duration)
        t = np.minimum(np.concatenate(ts).astype(np.int64), duration - 1)
        return make_events(np.concatenate(xs), np.concatenate(ys), np.concatenate(ps), t)
