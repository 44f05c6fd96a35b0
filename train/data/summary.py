"""Look at a dataset without training: counts per split and class, a few samples, and a PNG."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from chipnet.atomic import atomic_write
from chipnet.events import to_frames
from train.data import event_dataset
from train.data.layout import SPLITS


def inspect_dataset(
    name: str,
    data_root: str | os.PathLike | None = None,
    options: dict[str, Any] | None = None,
    samples: int = 4,
    timesteps: int = 8,
    png: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Per split: sample count, per-class counts and the first ``samples`` samples' labels and
    event counts; with ``png``, also a picture of those samples' event frames per time bin."""
    info: dict[str, Any] = {"dataset": name, "splits": {}}
    first = None
    for split in SPLITS:
        ds = event_dataset(name, split, data_root, **(options or {}))
        info["sensor_size"] = list(ds.sensor_size)
        info["classes"] = list(ds.classes)
        counts = np.bincount(np.asarray(ds.targets, dtype=np.int64), minlength=len(ds.classes))
        shown = []
        for i in range(min(samples, len(ds))):
            events, label = ds[i]
            span = int(events["t"].max() - events["t"].min()) if len(events) else 0
            shown.append(
                {"index": i, "label": label, "class": ds.classes[label], "events": len(events), "duration_us": span}
            )
        info["splits"][split] = {
            "samples": len(ds),
            "per_class": {ds.classes[c]: int(n) for c, n in enumerate(counts)},
            "first": shown,
        }
        if first is None:
            first = ds
    if png is not None and first is not None:
        info["png"] = str(save_sample_frames(first, png, samples, timesteps))
    return info


def save_sample_frames(ds: Any, path: str | os.PathLike, samples: int, timesteps: int) -> Path:
    """PNG of ``samples`` samples (rows) as ON − OFF event frames per time bin (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height, _ = ds.sensor_size
    n = max(1, min(samples, len(ds)))
    fig, axes = plt.subplots(n, timesteps, figsize=(1.4 * timesteps, 1.5 * n), squeeze=False)
    for row in range(n):
        events, label = ds[row] if row < len(ds) else (ds[0][0][:0], 0)
        frames = to_frames(events, ds.sensor_size, max(width, height), timesteps)
        diff = frames[1] - frames[0]
        lim = max(float(np.abs(diff).max()), 1.0)
        for col in range(timesteps):
            ax = axes[row, col]
            ax.imshow(diff[..., col], cmap="bwr", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(str(ds.classes[label])[:14], fontsize=7)
            if row == 0:
                ax.set_title(f"bin {col}", fontsize=7)
    fig.suptitle("ON (red) − OFF (blue) events per time bin", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
