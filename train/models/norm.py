"""Normalisation and dropout that deploy: lava-dl's ``slayer.neuron.norm`` and ``Dropout``, and their chip form.

SLAYER applies a neuron's ``norm`` to its synaptic current ``u`` (after the current decay, before
the voltage integrates it), so it never touches the synapses:

- ``mean-only`` (``MeanOnlyBatchNorm``): ``u - m`` with a per-channel running mean ``m`` on the
  8-bit weight grid; that is the neuron bias ``-m``, which NetX carries (``bias``);
- ``batch`` (:class:`AffineBatchNorm`): ``γ (u - m) / σ + β`` per channel, the paper's batch norm.
  Export folds it: the per-channel ``γ/σ`` goes into the channel's weights (the current is linear in
  them), ``β - γ m/σ`` becomes the neuron bias; then one factor per layer refills the 8-bit weight
  range and scales threshold and bias with it (:func:`fold_affine`);
- ``weight-scale`` (``WgtScaleBatchNorm``): ``(u - m) / 2**e`` with one power-of-two ``2**e``
  (``e`` in ``[-3, 3]``) from the layer's running variance. NetX reads no such scale (lava-dl
  writes ``neuron/weight_exp`` but NetX ignores it), so export moves it where it is exact: the
  neuron fires when ``Σ decay·(u - m) / 2**e >= θ``, i.e. when ``Σ decay·(u - m) >= θ·2**e``, so
  the threshold becomes ``θ·2**e`` (rounded to SLAYER's threshold grid, exact for our thresholds).

:func:`chip_norms` makes that chip form (:class:`NeuronBias` in place of the norm, the threshold
scaled) so the torch model export compares against is the one the file holds. Dropout
(``slayer.neuron.Dropout``, on the spikes of hidden dense layers) acts in training only.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any, Callable

import torch
from lava.lib.dl import slayer

from chipnet.chip import BIAS_RANGE, FILE_WEIGHT_RANGE, VTH_MAX, W_SCALE
from train.config import NORMS


def _on_grid(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to the file's ``1/64`` grid, with the gradient of the identity (straight through)."""
    return x + (torch.round(x * W_SCALE) / W_SCALE - x).detach()


class AffineBatchNorm(torch.nn.Module):
    """Per-channel batch norm with affine ``γ, β`` on a neuron's current ``[B, C, ..., T]``.

    Statistics run over batch, space and time, as the authors' ``BatchNorm2d`` over ``T·B`` frames.
    The first training batch sets the running statistics outright: averaging it into the initial
    variance of 1 left evaluation far off for many steps (spike currents vary much less than 1,
    so an evaluated network stayed silent after 20 steps of the full DVS Gesture config).
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = momentum
        self.bn = torch.nn.BatchNorm1d(num_features, eps=eps, momentum=momentum)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """``current [B, C, ..., T]`` normalised per channel."""
        b, c = current.shape[:2]
        self.bn.momentum = 1.0 if self.training and int(self.bn.num_batches_tracked) == 0 else self.momentum
        return self.bn(current.reshape(b, c, -1)).reshape(current.shape)

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The eval-mode map ``u ↦ a·u + b`` per channel: ``(a, b)``."""
        bn = self.bn
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return a.detach(), (bn.bias - a * bn.running_mean).detach()


class LearnedBias(torch.nn.Module):
    """A trainable neuron bias ``u + b`` (NetX's ``bias``), kept on the file's ``1/64`` grid (straight through)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.value = torch.nn.Parameter(torch.zeros(num_features))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """``current [B, C, ...]`` plus each channel's bias."""
        return current + _on_grid(self.value).view(1, -1, *([1] * (current.dim() - 2)))


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
    if kind == "batch":
        return functools.partial(AffineBatchNorm, num_features=channels)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def neuron_params(
    params: dict[str, Any], norm: str, channels: int, dropout: float = 0.0, bias: bool = False
) -> dict[str, Any]:
    """``params`` with a fresh norm for ``channels`` (or, with ``bias`` and no norm, a :class:`LearnedBias`)
    and, if ``dropout`` > 0, a fresh ``Dropout(p)``."""
    out = dict(params)
    factory = norm_factory(norm, channels)
    if factory is None and bias:
        factory = functools.partial(LearnedBias, num_features=channels)
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


def chip_norm(block: torch.nn.Module) -> None:
    """Replace a block's trained norm by its chip form, in place (a no-op without one)."""
    if getattr(block, "folds_own_norms", False):  # folded with its stages (train.models.fold.fold_spiking)
        return
    neuron = getattr(block, "neuron", None)
    norm = getattr(neuron, "norm", None)
    if norm is None or isinstance(norm, NeuronBias):
        return
    if isinstance(norm, LearnedBias):
        neuron.norm = NeuronBias(torch.round(norm.value.detach() * W_SCALE))
        return
    if isinstance(norm, AffineBatchNorm):
        fold_affine(block)
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


def block_synapses(block: torch.nn.Module) -> list[torch.nn.Module]:
    """The synapses whose current a block's neuron integrates (an SMA block's branches, else its one synapse)."""
    branches = getattr(block, "branches", None)
    return list(branches) if branches is not None else [block.synapse]


def bias_units(bias: float, threshold: int, keep: float, steps: int = 64) -> int:
    """An integer bias near ``bias`` (in the file's units) on the same side of every firing boundary.

    From rest, a neuron driven by its bias ``b`` alone has ``v_t = b·g_t`` with ``g_t = Σ_{i<t} keep^i``
    and fires at the first ``t`` with ``v_t > θ``. Rounding ``b`` to the nearest integer can cross a
    boundary ``θ/g_t`` (measured: a trained bias 1.0109 over a threshold 1.0 became equal to it, and
    that channel's rate fell from 0.78 to 0.42): the nearest integer on the trained side is taken.
    """
    rounded = round(bias)
    if bias <= 0 or threshold <= 0:
        return rounded
    low, high = -math.inf, math.inf  # the integers on the trained side of every boundary
    g = 0.0
    for t in range(steps):
        g = g * keep + 1.0
        bound = threshold / g
        if bias > bound:
            low = max(low, math.floor(bound) + 1)
        else:
            high = min(high, math.floor(bound))
    if low > high:  # no integer keeps every boundary: keep the nearest one
        return rounded
    return int(min(max(rounded, low), high))


def fold_affine(block: torch.nn.Module) -> None:
    """Fold a block's :class:`AffineBatchNorm` into its weights and a neuron bias, in place.

    ``a·u + b``: ``a`` per output channel multiplies the channel's weights (``u`` is linear in them,
    whatever the current decay), ``b`` becomes the bias. Then one factor ``c`` per block makes the
    largest weight fill SLAYER's 8-bit range; threshold and bias take ``c`` too (an exact rescaling
    of ``u`` and ``v``), so only rounding to the file's grids differs from the trained model. ``c`` is
    trimmed so that the threshold lands exactly on its grid, and each bias is rounded so that the
    neuron fires on its bias alone at the same steps as trained (:func:`bias_units`).
    """
    neuron = block.neuron
    a, b = neuron.norm.scale_shift()
    synapses = block_synapses(block)
    with torch.no_grad():
        weights = []
        for syn in synapses:
            w = syn.pre_hook_fx(syn.weight) if syn.pre_hook_fx is not None else syn.weight
            weights.append(w * a.view(-1, *([1] * (w.dim() - 1))))
        peak = max(float(w.abs().max()) for w in weights)
        c = FILE_WEIGHT_RANGE[1] / W_SCALE / peak if peak > 0 else 1.0
        # The 13-bit bias and the 17-bit threshold registers bound the factor too.
        if float(b.abs().max()) > 0:
            c = min(c, BIAS_RANGE[1] / (W_SCALE * float(b.abs().max())))
        c = min(c, VTH_MAX / (W_SCALE * threshold_of(block)))
        theta = threshold_of(block)
        units = math.floor(theta * c * W_SCALE)
        if units >= 1:  # an exact threshold: the bias rounding below then compares against the trained one
            c = units / (theta * W_SCALE)
        for syn, w in zip(synapses, weights):
            syn.weight.copy_(w * c)
        set_threshold(block, theta * c)
        keep = 1.0 - float(neuron.voltage_decay.reshape(-1)[0]) / 4096
        thr_units = round(threshold_of(block) * W_SCALE)
        neuron.norm = NeuronBias(torch.tensor([bias_units(float(v), thr_units, keep) for v in b * c * W_SCALE]))


def chip_norms(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` with every block's norm in its chip form (bias + threshold); dropout is off in eval."""
    net = copy.deepcopy(net)
    for block in net.blocks:
        chip_norm(block)
    return net.eval()
