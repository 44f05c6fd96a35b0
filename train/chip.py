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
VTH_MAX = (1 << 17) - 1  # unsigned 17-bit threshold mantissa
FILE_WEIGHT_RANGE = (-256, 254)  # integer weights SLAYER writes and NetX keeps unclipped
WEIGHT_FULL_SCALE = 255  # the denominator of export.json's weight_range_used
GAIN_MANT_BITS = 12  # per-timestep gain mantissa (docs/netx-format.md)
GAIN_EXP_MAX = 15
