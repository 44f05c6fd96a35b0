"""GainLIFReset: Lava's CUBA LIF-with-reset whose input current is scaled per timestep and channel.

A folded SMA layer (docs/netx-format.md, "Per-timestep gain") multiplies the neuron's synaptic
input at sample step ``t`` and channel ``c`` by ``gain_mant[t, c] / 2**gain_exp``. In fixed
point, with ``t = (time_step - reset_offset) mod T`` on Lava's 1-based clock (the layer's
reset step is its sample's step 0)::

    x = a_in << 6                                        # Loihi's MSB alignment
    x = sign(x) * ((|x| * gain_mant[t, c]) >> gain_exp)  # rounds toward zero
    u = decay(u) + x                                     # then CUBA exactly as LIFReset

Everything else (decays, 24-bit wrap of ``u``, ``v > vth``, the periodic reset) is Lava's own
``PyLifResetModelBitAcc``; with ``gain_mant = 1, gain_exp = 0`` the neuron is bit-identical to
stock ``LIFReset``. The channel is the last axis of the neuron shape (Lava's ``(W, H, C)`` or
``(C,)``).
"""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifResetModelBitAcc, PyLifResetModelFloat
from lava.proc.lif.process import LIFReset

from chipnet.chip import ACT_SHIFT, GAIN_EXP_MAX, GAIN_MANT_MAX


def gain_step(time_step: int, reset_offset: int, timesteps: int) -> int:
    """Row of the gain table used at Lava's 1-based ``time_step`` (docs/netx-format.md).

    NetX resets layer ``k`` at ``time_step ≡ reset_offset (mod T)``, the step at which the first
    frame of a sample reaches its neurons; from there on step ``t`` of the sample uses row ``t``,
    the same index ``FoldedConv`` uses in training.
    """
    return (time_step - reset_offset) % timesteps


def apply_gain_fixed(a_in: np.ndarray, mant_row: np.ndarray, exp: int) -> np.ndarray:
    """Loihi-aligned input current ``a_in << 6`` scaled by ``mant_row / 2**exp``, toward zero."""
    x = np.left_shift(np.asarray(a_in, dtype=np.int64), ACT_SHIFT)
    return np.sign(x) * np.right_shift(np.abs(x) * mant_row.astype(np.int64), exp)


class GainLIFReset(LIFReset):
    """``LIFReset`` with a per-timestep, per-channel gain on its input current.

    ``gain_mant`` is ``[T, C]`` (integers in ``[0, 4095]``), ``gain_exp`` an integer in ``[0, 15]``;
    all other parameters are ``LIFReset``'s.
    """

    def __init__(self, *, shape: tuple[int, ...], gain_mant: np.ndarray, gain_exp: int, **kwargs: ty.Any) -> None:
        # Lava's process must exist before anything can raise (its __del__ expects a built process).
        super().__init__(shape=shape, **kwargs)
        mant = np.asarray(gain_mant)
        if mant.ndim != 2 or mant.shape[1] != shape[-1]:
            raise ValueError(f"gain_mant must be [T, {shape[-1]}] for neurons of shape {shape}, got {mant.shape}")
        if not np.issubdtype(mant.dtype, np.integer) or mant.min(initial=0) < 0 or mant.max(initial=0) > GAIN_MANT_MAX:
            raise ValueError(f"gain_mant must be integers in [0, {GAIN_MANT_MAX}]")
        if int(gain_exp) != gain_exp or not 0 <= int(gain_exp) <= GAIN_EXP_MAX:
            raise ValueError(f"gain_exp must be an integer in [0, {GAIN_EXP_MAX}], got {gain_exp}")
        self.proc_params["timesteps"] = mant.shape[0]
        self.gain_mant = Var(shape=mant.shape, init=mant.astype(np.int32))
        self.gain_exp = Var(shape=(1,), init=int(gain_exp))


@implements(proc=GainLIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyGainLifResetModelBitAcc(PyLifResetModelBitAcc):
    """Bit-accurate model: the gain applied to the MSB-aligned input, then Lava's CUBA update."""

    # Lava's decorators refuse a subclass of a model that already implements another process.
    implements_process = None
    tags: list[str] = []

    gain_mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=12)
    gain_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=4)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self.timesteps = proc_params["timesteps"]
        self.gain_offset = proc_params["reset_offset"]
        # The gain needs the shifted input, so the shift moves here and the parent adds x as is.
        self.act_shift = 0

    def subthr_dynamics(self, activation_in: np.ndarray) -> None:
        """Scale the input by this step's gain row, then Lava's fixed-point LIF update."""
        row = self.gain_mant[gain_step(self.time_step, self.gain_offset, self.timesteps)]
        x = apply_gain_fixed(activation_in, row, int(self.gain_exp[0]))
        # The parent adds the current into int32 as it does for stock input (same wrap on overflow).
        super().subthr_dynamics(x)


@implements(proc=GainLIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGainLifResetModelFloat(PyLifResetModelFloat):
    """Floating-point model: input times ``gain_mant[t] / 2**gain_exp``, then Lava's float LIF."""

    implements_process = None
    tags: list[str] = []

    gain_mant: np.ndarray = LavaPyType(np.ndarray, float)
    gain_exp: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self.timesteps = proc_params["timesteps"]
        self.gain_offset = proc_params["reset_offset"]

    def subthr_dynamics(self, activation_in: np.ndarray) -> None:
        """Scale the input by this step's gain row, then Lava's float LIF update."""
        row = self.gain_mant[gain_step(self.time_step, self.gain_offset, self.timesteps)]
        super().subthr_dynamics(activation_in * row / 2.0 ** self.gain_exp[0])
