"""What a training epoch looks like inside: per-layer firing rates, weight-gradient norms, silent outputs.

Firing rates are the mean of each spiking block's output over the epoch's training batches
(spikes per neuron per step); a voltage readout has no spikes and is left out. Gradient norms are
each block's weight-gradient L2 norm, averaged over the epoch's optimizer steps: the measurement
that shows gradients vanishing toward the input.
"""

from __future__ import annotations

from typing import Any

import torch

from chipnet.decision import decide_output


def _block_name(index: int, block: torch.nn.Module) -> str:
    return f"{index}:{type(block).__name__}"


class EpochMonitor:
    """Collects per-block firing rates (forward hooks) and weight-gradient norms for one epoch at a time."""

    def __init__(self, net: torch.nn.Module, readout: str) -> None:
        self.blocks = list(net.blocks)
        self.readout = readout
        self.names = [_block_name(i, b) for i, b in enumerate(self.blocks)]
        # Blocks without parameters (flatten) only pass spikes on.
        self._hooks = [
            b.register_forward_hook(self._hook(i))
            for i, b in enumerate(self.blocks)
            if any(True for _ in b.parameters())
        ]
        self.reset()

    def _hook(self, index: int) -> Any:
        def record(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
            if module.training and isinstance(output, torch.Tensor):
                self._rate_sum[index] += float(output.detach().float().mean())
                self._rate_n[index] += 1

        return record

    def reset(self) -> None:
        """Start a new epoch."""
        n = len(self.blocks)
        self._rate_sum, self._rate_n = [0.0] * n, [0] * n
        self._grad_sum, self._steps = [0.0] * n, 0
        self.samples = self.silent = self.undecided = 0

    def after_backward(self) -> None:
        """Add this step's weight-gradient norm of every block with weights."""
        for i, block in enumerate(self.blocks):
            sq = 0.0
            for name, p in block.named_parameters():
                if p.grad is not None and name.endswith("weight") and p.dim() > 1:
                    sq += float(p.grad.detach().float().pow(2).sum())
            self._grad_sum[i] += sq**0.5
        self._steps += 1

    def add_outputs(self, out: torch.Tensor) -> None:
        """Count the batch's samples whose output is silent (spiking readout) or undecided."""
        decision = decide_output(out, self.readout)
        self.samples += out.shape[0]
        self.undecided += decision.undecided
        if self.readout == "spikes":
            self.silent += int((out.detach().reshape(out.shape[0], -1) == 0).all(1).sum())

    def summary(self) -> dict[str, Any]:
        """The epoch's numbers for ``metrics.json``."""
        last = len(self.blocks) - 1
        spiking = [
            i for i in range(len(self.blocks)) if self._rate_n[i] and not (i == last and self.readout == "voltage")
        ]
        return {
            "firing_rate": {self.names[i]: self._rate_sum[i] / self._rate_n[i] for i in spiking},
            "grad_norm": {
                self.names[i]: self._grad_sum[i] / self._steps
                for i in range(len(self.blocks))
                if self._steps and self._grad_sum[i] > 0
            },
            "silent_share": self.silent / self.samples if self.samples and self.readout == "spikes" else None,
            "undecided_share": self.undecided / self.samples if self.samples else None,
        }

    def close(self) -> None:
        """Remove the hooks."""
        for h in self._hooks:
            h.remove()


def silent_warning(summary: dict[str, Any], epoch: int) -> str | None:
    """One line when every training sample of the epoch left the output silent, else None."""
    share = summary.get("silent_share")
    if share is not None and share >= 1.0:
        return (
            f"warning: epoch {epoch}: the output layer was silent for every training sample "
            "(a spike-rate loss rewards silence: try readout.kind: voltage or readout.loss: ce)"
        )
    return None


def format_rates(summary: dict[str, Any]) -> str:
    """Firing rates and gradient norms as one compact line."""
    rates = " ".join(f"{v:.3f}" for v in summary["firing_rate"].values())
    grads = " ".join(f"{v:.1e}" for v in summary["grad_norm"].values())
    return f"rates [{rates}] grad norms [{grads}]"
