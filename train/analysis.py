"""The paper's analyses of a trained run: scale importance per class (Fig. 5) and spike-rate maps
of the first SMA layer against the plain VGG (Fig. 3).

Scale importance of kernel ``n`` for a sample is the share of the SMA weights it gets,
``mean_{t,c} W_α[n,t]·W_β[n,t,c] / Σ_m mean_{t,c} W_α[m,t]·W_β[m,t,c]``, averaged over the
samples of each class. Spike rate of a layer is spikes per neuron per timestep; the maps average
it over channels and time at each pixel of that layer's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from chipnet.errors import CheckpointError
from train.loop import load_checkpoint, load_datasets
from train.models.sma import SMAConv
from train.rundir import RunDir


def _batches(spikes: np.ndarray, batch_size: int):
    for i in range(0, len(spikes), batch_size):
        yield torch.from_numpy(spikes[i : i + batch_size].astype(np.float32))


def scale_importance(
    net: torch.nn.Module, spikes: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int = 32
) -> dict[int, np.ndarray]:
    """Per SMA block (keyed by block index): ``[classes, N]`` mean share of each kernel size."""
    blocks = {i: b for i, b in enumerate(net.blocks) if isinstance(b, SMAConv)}
    if not blocks:
        raise CheckpointError(f"{type(net).__name__} has no SMA blocks: scale importance needs sma-vgg or sma-azo-vgg")
    shares: dict[int, list[torch.Tensor]] = {i: [] for i in blocks}
    net.eval()
    with torch.no_grad():
        for x in _batches(spikes, batch_size):
            net(x)
            for i, b in blocks.items():
                s = (b.last_attention["temporal"][..., None] * b.last_attention["channel"]).mean(dim=(2, 3))  # [B, N]
                shares[i].append(s / s.sum(dim=1, keepdim=True))
    out = {}
    for i, parts in shares.items():
        share = torch.cat(parts).numpy()
        table = np.full((num_classes, share.shape[1]), np.nan)
        for c in range(num_classes):
            if (labels == c).any():
                table[c] = share[labels == c].mean(axis=0)
        out[i] = table
    return out


def layer_rates(net: torch.nn.Module, spikes: np.ndarray, block: int, batch_size: int = 32) -> np.ndarray:
    """Spike rate of block ``block``'s output per sample and pixel, ``[samples, H, W]``."""
    maps = []
    net.eval()
    with torch.no_grad():
        for x in _batches(spikes, batch_size):
            out = net.forward_all(x)[block]
            if out.dim() != 5:
                raise CheckpointError(
                    f"block {block} of {type(net).__name__} is not a conv layer (output {tuple(out.shape)})"
                )
            maps.append(out.mean(dim=(1, 4)).numpy())
    return np.concatenate(maps)


def analyze(
    run: str | Path,
    out_dir: str | Path | None = None,
    baseline: str | Path | None = None,
    checkpoint: str = RunDir.LAST,
    samples: int = 256,
    show: int = 4,
) -> dict[str, Any]:
    """Write ``scale_importance_block<i>.png``, ``spike_rates.png`` and ``analysis.json`` for ``run``."""
    from chipnet.atomic import atomic_write_json
    from train.plots import scale_importance as plot_importance
    from train.plots import spike_rate_maps

    net, cfg, state = load_checkpoint(run, checkpoint)
    out = Path(out_dir or run)
    classes = list(state["classes"])
    data = load_datasets(cfg)[1]
    spikes, labels = data.spikes[:samples], np.asarray(data.labels[:samples])
    result: dict[str, Any] = {
        "run": str(run),
        "checkpoint": checkpoint,
        "split": "test",
        "samples": int(len(labels)),
        "classes": classes,
        "kernel_sizes": list(cfg.sma.kernel_sizes),
        "scale_importance": {},
    }
    for block, table in scale_importance(net, spikes, labels, len(classes)).items():
        result["scale_importance"][f"block{block}"] = {cls: [float(v) for v in row] for cls, row in zip(classes, table)}
        plot_importance(
            table,
            classes,
            cfg.sma.kernel_sizes,
            out / f"scale_importance_block{block}.png",
            f"{cfg.model} on {cfg.dataset}: scale importance per class (block {block}, {len(labels)} test samples)",
        )
    first = next(i for i, b in enumerate(net.blocks) if isinstance(b, SMAConv))
    maps = {cfg.model: layer_rates(net, spikes, first)}
    if baseline is not None:
        base, base_cfg, _ = load_checkpoint(baseline, checkpoint)
        same = ("dataset", "dataset_options", "input_size", "timesteps")
        diff = [k for k in same if getattr(base_cfg, k) != getattr(cfg, k)]
        if diff:
            raise CheckpointError(f"{baseline}: baseline differs from {run} in {diff}; the maps need the same inputs")
        maps[base_cfg.model] = layer_rates(base, spikes, first)
        maps = {base_cfg.model: maps[base_cfg.model], cfg.model: maps[cfg.model]}  # baseline first, as Fig. 3
    # Show one sample of each of the first classes present, so the maps cover different gestures.
    picks = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)][:show]
    totals = {name: float(m.mean()) for name, m in maps.items()}
    result["spike_rates"] = {"block": first, **totals}
    inputs = spikes[picks].sum(axis=(1, 4))
    spike_rate_maps(
        inputs,
        {k: m[picks] for k, m in maps.items()},
        totals,
        out / "spike_rates.png",
        f"spike rate of block {first} (first layer after the encoder), {cfg.dataset} test samples",
    )
    atomic_write_json(out / "analysis.json", result)
    return result
