"""2×2 max pooling of spikes as NetX can deploy it: a depthwise conv into neurons that fire on any input spike.

NetX has no pool layer. On binary spikes a 2×2 max pool is an OR, and the OR is a neuron: a
depthwise 2×2 stride-2 conv with weights 1 into CUBA neurons with no memory (current and voltage
decay 1, so ``v_t`` is the window's spike count at step ``t``) and threshold 0.5 fires exactly
when one of its four inputs spiked. The block *is* that layer in training too (SLAYER's conv
block, weights frozen at 1), so the file holds what was trained, spike for spike; its surrogate
gradient passes the OR's error back to the four inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from lava.lib.dl import slayer


class SpikeMaxPool(slayer.block.cuba.Conv):
    """Spikes ``[B, C, H, W, T]`` → their 2×2 max pool ``[B, C, H/2, W/2, T]`` (an OR per window and step)."""

    def __init__(self, neuron: dict[str, Any], channels: int) -> None:
        params = {
            "threshold": 0.5,
            "current_decay": 1.0,
            "voltage_decay": 1.0,
            "tau_grad": neuron.get("tau_grad", 1.0),
            "scale_grad": neuron.get("scale_grad", 1.0),
            "requires_grad": False,
        }
        super().__init__(params, channels, channels, 2, stride=2, groups=channels, weight_scale=1, delay_shift=False)
        with torch.no_grad():
            self.synapse.weight.fill_(1.0)
        self.synapse.weight.requires_grad_(False)
