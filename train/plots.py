"""PNG figures of a training run: curves, scale importance (paper Fig. 5), spike-rate maps (Fig. 3)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from chipnet.atomic import atomic_write  # noqa: E402


def save_figure(fig: "plt.Figure", path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def training_curves(metrics: dict[str, Any], path: str | Path) -> Path:
    """Loss and accuracy per epoch, train, validation and test, with the selected epoch marked."""
    rows = metrics["epochs"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for split, style in (("train", "-o"), ("val", "-^"), ("test", "-s")):
        # No validation (val_fraction 0, or a run from before it) leaves those values None or absent.
        points = [
            (r["epoch"], r[f"{split}_loss"], r[f"{split}_accuracy"])
            for r in rows
            if r.get(f"{split}_accuracy") is not None
        ]
        if points:
            epochs, losses, accs = zip(*points)
            ax_loss.plot(epochs, losses, style, ms=3, label=split)
            ax_acc.plot(epochs, accs, style, ms=3, label=split)
    if metrics.get("best_epoch"):
        # Runs from before validation have no "selection": their best epoch was chosen on test.
        how = {"val_accuracy": "best val", "last": "last"}.get(metrics.get("selection"), "best test")
        ax_acc.axvline(
            metrics["best_epoch"], color="grey", ls=":", label=f"selected: {how} (epoch {metrics['best_epoch']})"
        )
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.suptitle(f"{metrics.get('model', '')} on {metrics.get('dataset', '')}")
    return save_figure(fig, path)


def layer_health(metrics: dict[str, Any], path: str | Path) -> Path | None:
    """Per-layer firing rate and weight-gradient norm per epoch (``train.monitor``); None for runs without them."""
    rows = [r for r in metrics["epochs"] if r.get("grad_norm")]
    if not rows:
        return None
    fig, (ax_rate, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [r["epoch"] for r in rows]
    for key, ax in (("firing_rate", ax_rate), ("grad_norm", ax_grad)):
        for name in rows[-1][key]:
            ax.plot(epochs, [r[key].get(name, np.nan) for r in rows], "-o", ms=3, label=name)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_rate.set(xlabel="epoch", ylabel="spikes / neuron / step", title="firing rate (training batches)")
    ax_grad.set(xlabel="epoch", ylabel="L2 norm", title="weight-gradient norm (mean over steps)", yscale="log")
    ax_grad.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{metrics.get('model', '')} on {metrics.get('dataset', '')}: layers")
    return save_figure(fig, path)


def scale_importance(
    importance: np.ndarray, classes: Sequence[str], kernel_sizes: Sequence[int], path: str | Path, title: str
) -> Path:
    """Grouped bars: mean attention weight of each kernel size per class (rows of ``importance``)."""
    n_cls, n_scales = importance.shape
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * n_cls + 2), 4))
    width = 0.8 / n_scales
    x = np.arange(n_cls)
    for j, k in enumerate(kernel_sizes):
        ax.bar(x + (j - (n_scales - 1) / 2) * width, importance[:, j], width, label=f"{k}×{k}")
    ax.axhline(1 / n_scales, color="grey", ls=":", lw=1, label="uniform")
    ax.set_xticks(x, list(classes), rotation=35, ha="right")
    ax.set(ylabel="share of attention", title=title)
    ax.legend(title="kernel", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def spike_rate_maps(
    inputs: np.ndarray, maps: dict[str, np.ndarray], totals: dict[str, float], path: str | Path, title: str
) -> Path:
    """Per sample: input events, then each model's spike-rate map; a colour bar and mean rates on the right."""
    names = list(maps)
    n, cols = inputs.shape[0], len(names) + 1
    fig = plt.figure(figsize=(2.4 * cols + 5.0, 2.4 * n + 0.6))
    grid = fig.add_gridspec(n, cols + 3, width_ratios=[1] * cols + [0.08, 0.75, 1.5], wspace=0.15, hspace=0.15)
    vmax = max(float(m.max()) for m in maps.values()) or 1.0
    for i in range(n):
        panels = [("input events", inputs[i], "gray", None)] + [(k, maps[k][i], "jet", vmax) for k in names]
        for j, (name, image, cmap, top) in enumerate(panels):
            ax = fig.add_subplot(grid[i, j])
            im = ax.imshow(image, cmap=cmap, vmin=0, vmax=top)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name)
            if j == 1:
                rate_image = im
    fig.colorbar(rate_image, cax=fig.add_subplot(grid[:, cols]), label="spike rate (per neuron, per step)")
    bar = fig.add_subplot(grid[0 : max(1, n // 2), cols + 2])
    bar.bar(names, [totals[k] for k in names], color=["tab:blue", "tab:red", "tab:green"][: len(names)])
    bar.set(title="mean spike rate", ylabel="spikes / neuron / step")
    bar.tick_params(axis="x", rotation=20)
    fig.suptitle(title)
    return save_figure(fig, path)
