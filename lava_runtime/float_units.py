"""NetX's fixed-point parameters in the units Lava's floating-point process models read.

NetX builds every block with Loihi's integer parameters, which only the fixed-point models
(``fixed_pt``) interpret: ``PyLifResetModelBitAcc`` shifts input and threshold left by 6 bits,
takes decays as 12-bit fractions (``du`` one below the file's ``iDecay``) and the bias as
``bias_mant << bias_exp``; ``PyDenseModelBitAcc`` clips and truncates its weights and shifts the
sums by ``weight_exp``. Lava's float models (``floating_pt``) take the same quantities as plain
numbers, so ``--backend sim-float`` rewrites each block's variables before the run:

=================  ========================================  ==============================
quantity           fixed point (NetX → Lava)                  float (what the float models read)
=================  ========================================  ==============================
current decay      ``du = iDecay - 1`` (+1 in the model)      ``du = iDecay / 4096``
voltage decay      ``dv = vDecay``                            ``dv = vDecay / 4096``
threshold          ``vth = vThMant`` (compared as ``<< 6``)   ``vth = vThMant``
bias               ``bias_mant << bias_exp`` (on ``v << 6``)  ``bias_mant · 2**bias_exp / 64``
dense weights      clipped, truncated, sum ``<< weight_exp``  ``w · 2**weight_exp``
conv weights       integers                                    the same numbers
gain (SMA)         ``(x · mant) >> exp`` toward zero          ``x · mant / 2**exp`` (model's own)
=================  ========================================  ==============================

The float network therefore has the fixed-point network's weights and time constants without
its rounding (decays truncate, shifts floor, states wrap at 24 bits): the reference for what the
quantisation of the neuron state costs. :mod:`lava_runtime.emu` computes the same float
arithmetic (``arithmetic="float"``), spike for spike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lava.lib.dl.netx.blocks.process import Conv, Dense, Input
from lava.magma.core.process.process import AbstractProcess
from lava.proc.sdn.process import Delta, Sigma, SigmaDelta
from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights

from chipnet.chip import ACT_SHIFT, DECAY_UNITY
from chipnet.errors import RuntimeConfigError


def dense_float_weights(weights: np.ndarray, proc_params: dict[str, Any]) -> np.ndarray:
    """The weights ``PyDenseModelBitAcc`` uses (clipped, truncated) times ``2**weight_exp``."""
    num_bits = int(proc_params.get("num_weight_bits", 8))
    sign_mode: SignMode = proc_params.get("sign_mode") or determine_sign_mode(weights)
    w = truncate_weights(clip_weights(np.asarray(weights), sign_mode, num_bits=8), sign_mode, num_bits)
    return w.astype(np.float64) * 2.0 ** int(proc_params.get("weight_exp", 0))


def to_float_units(layers: list[AbstractProcess]) -> None:
    """Rewrite the variables of NetX ``Input``/``Conv``/``Dense`` blocks (not yet compiled) into float units."""
    for block in layers:
        if not isinstance(block, (Input, Conv, Dense)):
            raise RuntimeConfigError(f"sim-float: no float conversion for NetX block {type(block).__name__}")
        neuron = block.neuron
        if isinstance(neuron, (Delta, Sigma, SigmaDelta)):
            # Lava's float SDNN models take NetX's vth and bias scaled by 2**12 but no input shifts.
            raise RuntimeConfigError(
                "sim-float: sigma-delta (SDNN) blocks have no float units here; run them on sim or emu (fixed point)"
            )
        if isinstance(block, Dense):
            block.synapse.weights.init = dense_float_weights(block.synapse.weights.init, block.synapse.proc_params)
        elif isinstance(block, Conv):
            block.synapse.weight.init = np.asarray(block.synapse.weight.init, dtype=np.float64)
        # Input blocks have no synapse: the payload is a_in, which the float LIF adds unshifted.
        neuron.du.init = (_decays(neuron.du.init) + 1) / DECAY_UNITY
        neuron.dv.init = _decays(neuron.dv.init) / DECAY_UNITY
        neuron.vth.init = _scalar(neuron.vth.init)
        bias_exp = np.asarray(neuron.bias_exp.init, dtype=np.float64)
        neuron.bias_mant.init = np.asarray(neuron.bias_mant.init, dtype=np.float64) * 2.0**bias_exp / 2**ACT_SHIFT


def _decays(value: Any) -> float | np.ndarray:
    """One decay, or lava-dl's per-neuron decays (kept as an array that broadcasts over the channels)."""
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    return float(arr[0]) if arr.size == 1 else arr


def _scalar(value: Any) -> float:
    return float(np.asarray(value).reshape(-1)[0])
