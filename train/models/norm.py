"""Normalisation and dropout that deploy: lava-dl's ``slayer.neuron.norm`` and ``Dropout``, and their chip form.

SLAYER applies a neuron's ``norm`` to its synaptic current ``u`` (after the current decay, before
the voltage integrates it), so it never touches the synapses:

- ``mean-only`` (``MeanOnlyBatchNorm``): ``u - m`` with a per-channel running mean ``m`` on the
  8-bit weight grid; that is the neuron bias ``-m``, which NetX carries (``bias``);
- ``weight-scale`` (``WgtScaleBatchNorm``): ``(u - m) / 2**e`` with one power-of-two ``2**e``
  (``e`` in ``[-3, 3]``) from the layer's running variance. NetX reads no such scale (lava-dl
  writes ``neuron/weight_exp`` but NetX ignores it), so export moves it where it is exact: the
  neuron fires when ``Σ decay·(u - m) / 2**e >= θ``, i.e. when ``Σ decay·(u - m) >= θ·2**e``, so
  the threshold becomes ``θ·2**e`` (rounded to SLAYER's threshold grid, exact for our thresholds).

:func:`deploy_norms` makes that chip form (:class:`NeuronBias` in place of the norm, the threshold
scaled) so the torch model export compares against is the one the file holds. Dropout
(``slayer.neuron.Dropout``, on the spikes of hidden dense layers) acts in training only.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable

import torch
from lava.lib.dl import slayer

from train.chip import W_SCALE

NORMS = ("none", "mean-only", "weight-scale")


def norm_factory(kind: str, channels: int) -> Callable[[], torch.nn.Module] | None:
    """The ``norm`` entry of SLAYER's neuron parameters for ``channels`` features (None for ``none``).

    ``num_features`` is given up front so the running mean has its size before the first sample
    and checkpoints load into a freshly built model.
    """
    if kind == "none":
        return None
    if kind == "mean-only":
        return functools.partial(slayer.neuron.norm.MeanOnlyBatchNorm, num_features=channels)
    if kind == "weight-scale":
        return functools.partial(slayer.neuron.norm.WgtScaleBatchNorm, num_features=channels)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def neuron_params(params: dict[str, Any], norm: str, channels: int, dropout: float = 0.0) -> dict[str, Any]:
    """``params`` with a fresh norm for ``channels`` and, if ``dropout`` > 0, a fresh ``Dropout(p)``."""
    out = dict(params)
    factory = norm_factory(norm, channels)
    if factory is not None:
        out["norm"] = factory
    if dropout > 0:
        out["dropout"] = slayer.neuron.Dropout(p=dropout)
    return out


class NeuronBias(torch.nn.Module):
    """The chip form of a norm: ``u + b`` with an integer bias ``b`` in the file's units (``1/64``).

    Stands in SLAYER's ``neuron.norm`` slot, whose ``bias`` SLAYER's ``export_hdf5`` writes.
    """

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        if not torch.equal(bias, torch.round(bias)):
            raise ValueError("NeuronBias: the bias must be integers in the file's units")
        self.register_buffer("bias", bias.detach().clone().float().reshape(-1))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """``current [B, C, ...]`` plus the bias of each channel."""
        return current + (self.bias / W_SCALE).view(1, -1, *([1] * (current.dim() - 2)))


def neuron_bias(neuron: torch.nn.Module | None) -> torch.Tensor | None:
    """The integer bias a neuron carries in its deployed form, or None."""
    norm = getattr(neuron, "norm", None)
    return norm.bias if isinstance(norm, NeuronBias) else None


def chip_bias(block: torch.nn.Module) -> torch.Tensor | None:
    """The integer bias a block's neuron carries in its deployed form, or None."""
    return neuron_bias(getattr(block, "neuron", None))


def threshold_of(block: torch.nn.Module) -> float:
    """A block's threshold (FoldedConv keeps its own buffer)."""
    return float(block.threshold) if hasattr(block, "set_threshold") else float(block.neuron.threshold)


def set_threshold(block: torch.nn.Module, value: float) -> None:
    """Set a block's threshold on SLAYER's grid (``1/64``, at least one step), as the chip holds it."""
    if hasattr(block, "set_threshold"):
        block.set_threshold(value)
    else:  # SLAYER keeps the threshold as a plain attribute
        block.neuron._threshold = max(1, round(value * W_SCALE)) / W_SCALE


def scale_neuron(block: torch.nn.Module, factor: float) -> None:
    """Scale a block's threshold and bias by ``factor`` (what scaling its synaptic input by ``factor`` needs)."""
    set_threshold(block, threshold_of(block) * factor)
    bias = chip_bias(block)
    if bias is not None:
        bias.copy_(torch.round(bias * factor))


def deploy_norm(block: torch.nn.Module) -> None:
    """Replace a block's trained norm by its chip form, in place (a no-op without one)."""
    neuron = getattr(block, "neuron", None)
    norm = getattr(neuron, "norm", None)
    if norm is None or isinstance(norm, NeuronBias):
        return
    if not isinstance(norm, (slayer.neuron.norm.MeanOnlyBatchNorm, slayer.neuron.norm.WgtScaleBatchNorm)):
        raise ValueError(f"no chip form for the normalisation {type(norm).__name__}")
    with torch.no_grad():
        bias = -norm.pre_hook_fx(norm.running_mean.detach(), descale=True)  # the mean on the 8-bit grid
        scale = 1.0
        if isinstance(norm, slayer.neuron.norm.WgtScaleBatchNorm):
            scale = float(norm.std(norm.running_var.detach()).reshape(-1)[0])
        neuron.norm = NeuronBias(torch.round(bias))
        if scale != 1.0:  # (u - m) / 2**e >= θ  ⇔  u - m >= θ·2**e
            set_threshold(block, threshold_of(block) * scale)


def deploy_norms(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` with every block's norm in its chip form (bias + threshold); dropout is off in eval."""
    net = copy.deepcopy(net)
    for block in net.blocks:
        deploy_norm(block)
    return net.eval()
