"""SpikeCounter: counts a layer's output spikes per timestep without storing the spikes.

Reading a Lava ``Var`` back costs time per element, so recording every neuron of every layer
(as a ``RingBuffer`` sink does) dominates a run; per-step totals are all a report needs.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class SpikeCounter(AbstractProcess):
    """Sink that stores the number of nonzero inputs at each of ``num_steps`` timesteps."""

    def __init__(self, *, shape: tuple[int, ...], num_steps: int) -> None:
        super().__init__(shape=shape, num_steps=num_steps)
        self.a_in = InPort(shape=shape)
        self.counts = Var(shape=(num_steps,), init=np.zeros(num_steps, dtype=np.int32))


class _PySpikeCounterModel(PyLoihiProcessModel):
    a_in = None
    counts = None

    def run_spk(self) -> None:
        spikes = self.a_in.recv()
        self.counts[(self.time_step - 1) % self.counts.shape[0]] = np.count_nonzero(spikes)


@implements(proc=SpikeCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeCounterFixed(_PySpikeCounterModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int32)


@implements(proc=SpikeCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeCounterFloat(_PySpikeCounterModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int32)
