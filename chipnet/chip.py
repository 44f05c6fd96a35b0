"""Loihi's fixed-point facts that training, export and the runtime share (one place for each).

Sources: Lava's bit-accurate models (``lava.proc.lif.models.PyLifModelBitAcc``: 24-bit ``u``/``v``,
17-bit ``vth``, 12-bit decays, inputs and thresholds MSB-aligned by 6 bits) and lava-dl's SLAYER
(``quantize_8bit``: weights on a grid of 2 in ``[-256, 254]`` integer units of ``1/64``).
"""

from __future__ import annotations

ACT_SHIFT = 6  # synaptic input and thresholds are shifted left by 6 bits (SLAYER's w_scale = 64)
W_SCALE = 1 << ACT_SHIFT
STATE_BITS = 24  # u and v registers
DECAY_UNITY = 4096  # 12-bit decays: a decay of d keeps (4096 - d) / 4096 per step
DECAY_MAX = DECAY_UNITY - 1  # the largest decay a 12-bit register holds
VTH_MAX = (1 << 17) - 1  # unsigned 17-bit threshold mantissa
# What SLAYER writes for layers without dynamics (vth << 6 above any 24-bit v); read_net accepts up to it.
VTH_MANT_FILE_MAX = (1 << 18) - 1
# Two weight ranges, two names: what SLAYER's quantize_8bit writes (and NetX keeps unclipped), and the
# widest range any Loihi sign mode holds (8-bit mantissa plus sign), which is what read_net accepts.
FILE_WEIGHT_RANGE = (-256, 254)  # integer weights SLAYER writes and NetX keeps unclipped
LOIHI_WEIGHT_RANGE = (-256, 255)  # 8-bit mantissa plus sign, the widest any Loihi sign mode holds
WEIGHT_FULL_SCALE = 255  # the denominator of export.json's weight_range_used
BIAS_RANGE = (-4096, 4095)  # bias_mant is a signed 13-bit register
GAIN_MANT_BITS = 12  # per-timestep gain mantissa (docs/netx-format.md)
GAIN_MANT_MAX = (1 << GAIN_MANT_BITS) - 1
GAIN_MANT_RANGE = (0, GAIN_MANT_MAX)
GAIN_EXP_MAX = 15
GAIN_EXP_RANGE = (0, GAIN_EXP_MAX)
