"""The classifier's decision from its output, one rule per readout for training, export and every backend.

Spiking readout (:func:`decide`):

A sample's class is the output neuron with the most spikes over the sample's decision window.
Ties are common in small spiking networks (a silent output layer ties every class), and
``argmax`` would hand them all to class 0, so they are broken by the *earliest first spike*
(the neuron that reached threshold first saw the most evidence soonest). Samples still tied
after that (equal counts and equal first-spike steps, e.g. no output spike at all) are
*undecided*: their prediction is ``UNDECIDED`` (-1), which never equals a label, so they count
as errors. Reports give both numbers (``tied``, ``undecided``).

Voltage readout (:func:`decide_voltage`): the class is the output integrator with the largest
voltage at the end of the sample's window (``v_T = Σ_t (W s_t + b)``); samples whose largest
voltage is shared are undecided. Sigma-delta outputs: :func:`decide_graded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

UNDECIDED = -1
# Outputs may be numpy arrays or torch tensors: tensors are read through their own methods, so this
# module (the rule every backend shares) needs no torch.
Array = Any


def _numpy(x: Array, dtype: str | None = None) -> np.ndarray:
    """``x`` as a numpy array: a torch tensor is detached and copied to the CPU (as ``dtype`` if given)."""
    if hasattr(x, "detach"):
        x = x.detach()
        x = (x.float() if dtype == "float" else x).cpu().numpy()
    return np.asarray(x)


@dataclass
class Decision:
    """Predictions of ``N`` samples and how many needed the tie rule."""

    predictions: np.ndarray  # [N] int64, UNDECIDED where no rule decided
    tied: int  # samples whose top spike count is shared by several classes
    undecided: int  # tied samples that the earliest first spike could not separate either


def decide(spikes: Array) -> Decision:
    """Decide ``N`` samples from output spikes ``[N, ..., T]`` (the neurons flattened as classes)."""
    s = _numpy(spikes)
    n, t = s.shape[0], s.shape[-1]
    if n == 0:
        return Decision(np.zeros(0, np.int64), 0, 0)
    s = s.reshape(n, -1, t) != 0
    counts = s.sum(-1)
    top = counts == counts.max(-1, keepdims=True)
    # First spike step per neuron; T for none. Only top-count neurons compete.
    first = np.where(top, np.where(s.any(-1), s.argmax(-1), t), t + 1)
    best = first == first.min(-1, keepdims=True)
    tied = top.sum(-1) > 1
    undecided = best.sum(-1) > 1
    pred = np.where(undecided, UNDECIDED, best.argmax(-1)).astype(np.int64)
    return Decision(pred, int(tied.sum()), int(undecided.sum()))


def predict(out: Array, readout: str = "spikes") -> np.ndarray:
    """Predictions only (see :func:`decide_output`)."""
    return decide_output(out, readout).predictions


def accuracy(out: Array, labels: Array, readout: str = "spikes") -> float:
    """Share of samples whose decision equals the label (undecided samples count as wrong)."""
    labels = _numpy(labels)
    return float((predict(out, readout) == labels).mean()) if len(labels) else 0.0


def decide_graded(values: Array) -> Decision:
    """Decide ``N`` samples from graded outputs ``[N, ..., T]`` (sigma-delta ``sigma_output`` layers).

    The class is the output neuron with the largest sum over the sample's ``T`` steps (a sigma
    unit sends its decoded activation every step, so the sum is its mean times ``T``). There is
    no first-spike rule for graded values: samples whose largest sum is shared are undecided.
    """
    v = _numpy(values)
    n, t = v.shape[0], v.shape[-1]
    if n == 0:
        return Decision(np.zeros(0, np.int64), 0, 0)
    total = v.reshape(n, -1, t).astype(np.int64 if v.dtype.kind in "iub" else np.float64).sum(-1)
    top = total == total.max(-1, keepdims=True)
    tied = top.sum(-1) > 1
    pred = np.where(tied, UNDECIDED, top.argmax(-1)).astype(np.int64)
    return Decision(pred, int(tied.sum()), int(tied.sum()))


def decide_voltage(voltage: Array) -> Decision:
    """Decide ``N`` samples from the output integrators' voltage traces ``[N, C, T]`` (the last step counts)."""
    v = _numpy(voltage, "float")
    n = v.shape[0]
    if n == 0:
        return Decision(np.zeros(0, np.int64), 0, 0)
    final = v.reshape(n, -1, v.shape[-1])[..., -1]
    top = final == final.max(-1, keepdims=True)
    tied = top.sum(-1) > 1
    pred = np.where(tied, UNDECIDED, top.argmax(-1)).astype(np.int64)
    return Decision(pred, int(tied.sum()), int(tied.sum()))


def decide_output(out: Array, readout: str = "spikes") -> Decision:
    """The decision rule of ``readout`` (``spikes`` or ``voltage``, ``train.models.readout``) on a network output."""
    return decide_voltage(out) if readout == "voltage" else decide(out)
