"""Export verification: accuracy before folding, after folding, and in the chip's fixed point."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from chipnet.decision import accuracy, predict
from chipnet.netmodel import NetFile
from lava_runtime import emu


def torch_accuracy(net: torch.nn.Module, spikes: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> float:
    """Accuracy of a SLAYER network classified by its readout's rule (``chipnet.decision``)."""
    net.eval()
    readout = getattr(net, "readout", "spikes")
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            x = torch.from_numpy(spikes[start : start + batch_size].astype(np.float32))
            correct += int((predict(net(x), readout) == labels[start : start + batch_size]).sum())
    return correct / max(len(labels), 1)


def fixed_point_accuracy(net: NetFile, spikes: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the exported file as the chip computes it (the bit-exact emulator)."""
    out = emu.emulate(net, spikes, record="output")[-1]
    if out.voltage is not None:
        return accuracy(out.voltage, labels, "voltage")
    return accuracy(out.spikes, labels)


def accuracy_table(dynamic: float, folded: float, fixed: float, static_fixed: float) -> dict[str, Any]:
    """export.json's accuracies and the drops between them (percentage points).

    ``dynamic``: the trained model; ``folded``: the fold with float merged kernels and gains;
    ``fixed``: the exported file in the chip's integers; ``static_fixed``: the ``--fold static``
    form in integers (what Loihi 2 runs today; equal to ``fixed`` without gains).
    """
    return {
        "dynamic": dynamic,
        "folded_float": folded,
        "fixed_point": fixed,
        "static_fixed_point": static_fixed,
        "drop_fold_pp": 100 * (dynamic - folded),
        "drop_quantize_pp": 100 * (folded - fixed),
        "drop_total_pp": 100 * (dynamic - fixed),
        "drop_static_pp": 100 * (dynamic - static_fixed),
    }
