"""Reports of a run: JSON for machines, a PNG for people."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lava_runtime.simulate import LayerRecord
from train.atomic import atomic_write, atomic_write_json


def layer_rows(layers: list[LayerRecord]) -> list[dict[str, Any]]:
    """Per-layer counts: neurons, spikes inside the sample windows, spikes of sample tails."""
    rows = []
    for layer in layers:
        rows.append(
            {
                "name": layer.name,
                "shape": [int(v) for v in layer.shape],
                "neurons": int(np.prod(layer.shape)),
                "spikes": int(layer.counts.sum()),
                "tail_spikes": layer.tail_spikes,
            }
        )
    return rows


def build_report(
    layers: list[LayerRecord], labels: np.ndarray, run_info: dict[str, Any], wall_s: float
) -> dict[str, Any]:
    """The report dict: run description, accuracy by output spike count, per-layer counts."""
    out = layers[-1].spikes
    counts = out.reshape(out.shape[0], -1, out.shape[-1]).sum(-1)
    predictions = counts.argmax(-1)
    samples, timesteps = out.shape[0], out.shape[-1]
    rows = layer_rows(layers)
    return {
        **run_info,
        "samples": int(samples),
        "timesteps": int(timesteps),
        "accuracy": float((predictions == labels).mean()) if samples else 0.0,
        "predictions": predictions.tolist(),
        "labels": [int(v) for v in labels],
        "wall_s": wall_s,
        "steps_per_s": samples * timesteps / wall_s if wall_s > 0 else None,
        "layers": rows,
        "totals": {"spikes": sum(r["spikes"] for r in rows), "tail_spikes": sum(r["tail_spikes"] for r in rows)},
    }


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write ``report.json`` and, beside it, ``<stem>_spikes.png`` (spikes per layer per sample)."""
    path = Path(path)
    atomic_write_json(path, report)
    plot_spikes_per_layer(report, path.with_name(f"{path.stem}_spikes.png"))
    return path


def plot_spikes_per_layer(report: dict[str, Any], path: Path) -> Path:
    """Bar chart of mean spikes per sample and per neuron for every layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in report["layers"]]
    n = max(report["samples"], 1)
    per_sample = [r["spikes"] / n for r in report["layers"]]
    rate = [r["spikes"] / n / r["neurons"] / report["timesteps"] for r in report["layers"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].bar(names, per_sample, color="tab:blue")
    axes[0].set_ylabel("spikes per sample")
    axes[1].bar(names, rate, color="tab:orange")
    axes[1].set_ylabel("spikes per neuron per step")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{report.get('net', '')} on {report.get('backend', '')}: accuracy {report['accuracy']:.3f}")
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return path
