"""The one event → tensor pipeline shared by every dataset.

Events are numpy structured arrays with fields ``x, y, p, t`` (tonic's convention; ``t`` in
microseconds). Tensors are SLAYER's layout ``[C=2, H, W, T]``.
"""

from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "i1"), ("t", "<i8")])


def make_events(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Pack coordinate arrays into a time-sorted structured event array."""
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = x, y, p, t
    ts = ev["t"]
    if len(ts) < 2 or bool(np.all(ts[1:] >= ts[:-1])):  # recordings arrive sorted: skip the sort
        return ev
    return ev[np.argsort(ts, kind="stable")]


BINNINGS = ("time", "count")  # equal time per frame, or equal event count per frame (the authors' split_by='number')
ENCODINGS = ("spikes", "counts")  # binary spikes, or event counts clipped to COUNT_MAX (graded input)
COUNT_MAX = 255  # the 8-bit payload a graded first synapse takes (docs/design.md, "Input")


def to_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    size: int,
    timesteps: int,
    t_start: int | None = None,
    t_end: int | None = None,
    binning: str = "time",
) -> np.ndarray:
    """Bin events into event counts ``[2, size, size, timesteps]`` (float32).

    Space is downsampled by sum-pooling the sensor grid (W, H) onto ``size × size``. Time:
    ``binning="time"`` cuts ``[t_start, t_end)`` (default: the sample's own span) into
    ``timesteps`` equal bins; ``binning="count"`` gives every frame the same number of the window's
    events (in stream order; the first ``n mod T`` frames take one more), as SpikingJelly's
    ``split_by='number'`` that the authors use. Events outside the sensor or the window are left out.
    """
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")
    width, height, _ = sensor_size
    out = np.zeros((2, size, size, timesteps), dtype=np.float32)
    if len(events) == 0:
        return out
    t = events["t"].astype(np.int64)
    t0 = int(t.min()) if t_start is None else int(t_start)
    t1 = int(t.max()) + 1 if t_end is None else int(t_end)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    keep = (t >= t0) & (t < t1) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    ev, t, x, y = events[keep], t[keep], x[keep], y[keep]
    if binning == "count":
        tb = np.arange(len(t), dtype=np.int64) * timesteps // max(len(t), 1)
    else:
        tb = ((t - t0) * timesteps) // max(t1 - t0, 1)
    xb = x * size // width
    yb = y * size // height
    pb = (ev["p"] > 0).astype(np.int64)
    flat = ((pb * size + yb) * size + xb) * timesteps + tb
    counts = np.bincount(flat, minlength=out.size)
    return counts.reshape(out.shape).astype(np.float32)


def to_spikes(frames: np.ndarray) -> np.ndarray:
    """Binary spikes from event counts: what a unary-spike input layer on Loihi can carry."""
    return (frames > 0).astype(np.float32)


def encode(frames: np.ndarray, encoding: str = "spikes") -> np.ndarray:
    """Event counts as the network's input, uint8: binary spikes, or counts clipped to :data:`COUNT_MAX`."""
    if encoding == "spikes":
        return to_spikes(frames).astype(np.uint8)
    if encoding == "counts":
        return np.minimum(frames, COUNT_MAX).astype(np.uint8)
    raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")


def denoise(events: np.ndarray, sensor_size: tuple[int, int, int], filter_time_us: int) -> np.ndarray:
    """Drop events that no 4-neighbour pixel supports within ``filter_time_us`` before them.

    tonic's ``Denoise`` rule (an event survives when an earlier event of the stream at a pixel
    left/right/above/below it lies less than ``filter_time_us`` back), vectorised: for each
    neighbour offset, a binary search over events sorted by (pixel, stream position) finds the
    neighbour's latest earlier event. Unlike tonic, nothing passes just for being near t=0.
    """
    n = len(events)
    if n == 0 or filter_time_us <= 0:
        return events
    width, height, _ = sensor_size
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    t = events["t"].astype(np.int64)
    pixel = y * width + x
    order = np.arange(n, dtype=np.int64)
    key = pixel * n + order  # sorted by pixel, then by position in the stream
    sort = np.argsort(key, kind="stable")
    sorted_key = key[sort]
    keep = np.zeros(n, dtype=bool)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        nx, ny = x + dx, y + dy
        inside = (nx >= 0) & (nx < width) & (ny >= 0) & (ny < height)
        probe = (ny * width + nx) * n + order  # the neighbour pixel, just before this event
        idx = np.searchsorted(sorted_key, probe, side="left") - 1
        found = inside & (idx >= 0)
        j = sort[np.clip(idx, 0, n - 1)]
        found &= pixel[j] == ny * width + nx
        keep |= found & (t - t[j] < filter_time_us)
    return events[keep]
