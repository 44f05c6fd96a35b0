"""Export verification: accuracy before folding, after folding, and in the chip's fixed point."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lava_runtime import emu
from lava_runtime.netfile import NetFile


def torch_accuracy(net: torch.nn.Module, spikes: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> float:
    """Accuracy of a SLAYER network classifying by output spike count (ties: lowest class)."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            x = torch.from_numpy(spikes[start:start + batch_size].astype(np.float32))
            counts = net(x).sum(-1)
            correct += int((counts.argmax(-1).numpy() == labels[start:start + batch_size]).sum())
    return correct / max(len(labels), 1)


def fixed_point_accuracy(net: NetFile, spikes: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the exported file as the chip computes it (the bit-exact emulator)."""
    records = emu.run_layers(net, spikes, record="output")
    out = records[-1].spikes
    counts = out.reshape(out.shape[0], -1, out.shape[-1]).sum(-1)
    return float((counts.argmax(-1) == labels).mean()) if len(labels) else 0.0


def accuracy_table(dynamic: float, folded: float, fixed: float) -> dict[str, Any]:
    """The three accuracies of export.json and the drops between them (percentage points)."""
    return {
        "dynamic": dynamic,
        "folded_float": folded,
        "fixed_point": fixed,
        "drop_fold_pp": 100 * (dynamic - folded),
        "drop_quantize_pp": 100 * (folded - fixed),
        "drop_total_pp": 100 * (dynamic - fixed),
    }
