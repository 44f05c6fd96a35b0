"""Output layers (readouts) and the losses that train them; one decision rule each in ``chipnet.decision``.

- ``spikes``: a CUBA dense layer; the class is the neuron with the most spikes (``decide``).
- ``voltage``: a non-spiking integrator. On the chip it is a CUBA dense layer with a bias, full
  current decay (``u = W s``), no voltage decay and the largest threshold Loihi holds
  (``vThMant = 2**17 - 1``, i.e. ``v`` must stay below ``2**23 - 64``: a mean output below 8191 per
  step at T = 16, where trained logits are of order 10), so at the end of a sample's window ``v = Σ_t (W s_t + b)``: ``T`` times the authors' output
  averaged over time. The class is the largest final voltage (``decide_voltage``). The block
  returns the voltage trace ``[B, classes, T]``; training reads ``v_T / T`` as logits.

Losses (``TrainConfig.loss``): ``spike-rate`` (SLAYER's, on spike outputs only), ``ce``
(cross-entropy on ``v_T / T`` or on spike counts) and ``mse`` (on ``v_T / T`` against the one-hot
label, as the authors train). Cross-entropy on spike counts gives a silent output the loss of a
uniform guess, so silence is never a cheap way out (the spike-rate loss rewards it).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lava.lib.dl import slayer

from chipnet.chip import VTH_MAX, W_SCALE
from train.config import READOUTS
from train.models.norm import LearnedBias

# What each readout allows; the first is its default.
READOUT_LOSSES = {"spikes": ("spike-rate", "ce"), "voltage": ("ce", "mse")}


class VoltageReadout(slayer.block.cuba.Dense):
    """Dense synapses into non-spiking integrators with a bias; ``forward`` returns the voltage ``[B, C, T]``."""

    def __init__(self, in_neurons: int, out_neurons: int, weight_scale: float = 2) -> None:
        params = {
            "threshold": VTH_MAX / W_SCALE,  # the 17-bit register's largest: never reached (module doc)
            "current_decay": 1.0,
            "voltage_decay": 0.0,
            "requires_grad": False,
            "norm": lambda: LearnedBias(out_neurons),
        }
        super().__init__(params, in_neurons, out_neurons, weight_scale=weight_scale, delay_shift=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``[B, F, T]`` → voltage ``[B, C, T]``: the running sum of ``W s_t + b``."""
        z = self.synapse(x)
        if self.neuron.shape is None:  # SLAYER sizes its neuron on the first input
            self.neuron.shape = z.shape[1:-1]
        return torch.cumsum(self.neuron.norm(z), dim=-1)


def logits(out: torch.Tensor, readout: str) -> torch.Tensor:
    """Per-class scores ``[B, C]`` of a network output: ``v_T / T`` (voltage) or spike counts (spikes)."""
    if readout == "voltage":
        return out[..., -1] / out.shape[-1]
    return out.reshape(out.shape[0], -1, out.shape[-1]).sum(-1)


def make_loss(readout: str, loss: str, true_rate: float = 0.2, false_rate: float = 0.03) -> Any:
    """The training loss for ``readout`` (``loss(out, labels)``), or ValueError for a pair that does not fit."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    if loss not in READOUT_LOSSES[readout]:
        raise ValueError(f"loss {loss!r} does not fit readout {readout!r}; use one of {READOUT_LOSSES[readout]}")
    if loss == "spike-rate":
        return slayer.loss.SpikeRate(true_rate=true_rate, false_rate=false_rate, reduction="mean")
    if loss == "ce":
        return lambda out, y: F.cross_entropy(logits(out, readout), y)
    return lambda out, y: F.mse_loss(logits(out, readout), F.one_hot(y, out.shape[1]).to(out.dtype))
