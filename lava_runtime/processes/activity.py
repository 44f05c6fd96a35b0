"""ActivityCounter: every counted layer's output spikes and the synaptic operations they cause, per timestep.

Reading a Lava ``Var`` back costs time per element, so recording every neuron of every layer
(as a ``RingBuffer`` sink does) dominates a run; this sink keeps two per-step totals per layer
instead: how many neurons fired, and the sum of their fan-outs into the next layer (synops, see
lava_runtime/counting.py). One sink serves all layers because every Lava process costs a
synchronisation with the runtime at every step: one extra process instead of one per layer
keeps counting cheap. Lava finds process models by importing the modules beside the process,
so processes live here, away from the package's ``__main__``.
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

# A process model declares its ports statically, so the sink has a fixed number of inputs;
# the unused ones stay unconnected and are never read.
MAX_LAYERS = 32


class ActivityCounter(AbstractProcess):
    """Sink with one input per layer (``a_in0``, ``a_in1``, ...) counting spikes and synops per step.

    ``fanouts[i]`` has the shape of layer ``i`` and holds each neuron's fan-out into the next
    layer. After the run, ``counts`` and ``synops`` are ``[layers, num_steps]``.
    """

    def __init__(self, *, shapes: list[tuple[int, ...]], num_steps: int, fanouts: list[np.ndarray]) -> None:
        if not 1 <= len(shapes) <= MAX_LAYERS or len(fanouts) != len(shapes):
            raise ValueError(
                f"ActivityCounter counts 1 to {MAX_LAYERS} layers, one fan-out each; "
                f"got {len(shapes)} shapes and {len(fanouts)} fan-outs"
            )
        fans = [np.asarray(f, dtype=np.int64) for f in fanouts]
        for i, (shape, fan) in enumerate(zip(shapes, fans)):
            if fan.shape != tuple(shape):
                raise ValueError(f"layer {i}: fan-out of shape {fan.shape} for neurons of shape {tuple(shape)}")
        offsets = np.cumsum([0] + [f.size for f in fans]).tolist()
        super().__init__(layers=len(shapes), offsets=offsets, num_steps=num_steps)
        for i in range(MAX_LAYERS):
            setattr(self, f"a_in{i}", InPort(shape=tuple(shapes[i]) if i < len(shapes) else (1,)))
        self.fanout = Var(shape=(offsets[-1],), init=np.concatenate([f.reshape(-1) for f in fans]))
        self.counts = Var(shape=(len(shapes), num_steps), init=np.zeros((len(shapes), num_steps), dtype=np.int64))
        self.synops = Var(shape=(len(shapes), num_steps), init=np.zeros((len(shapes), num_steps), dtype=np.int64))

    def port(self, layer: int) -> InPort:
        """The input that counts layer ``layer``."""
        return getattr(self, f"a_in{layer}")


class _PyActivityCounterModel(PyLoihiProcessModel):
    fanout: np.ndarray = LavaPyType(np.ndarray, np.int64)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    synops: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params: dict) -> None:
        super().__init__(proc_params)
        self.layers = proc_params["layers"]
        self.offsets = proc_params["offsets"]

    def run_spk(self) -> None:
        step = (self.time_step - 1) % self.counts.shape[1]
        for i in range(self.layers):
            fired = (getattr(self, f"a_in{i}").recv() != 0).reshape(-1)
            self.counts[i, step] = np.count_nonzero(fired)
            self.synops[i, step] = self.fanout[self.offsets[i] : self.offsets[i + 1]][fired].sum()


def _with_ports(cls: type, dtype: type) -> type:
    """Declare the ``MAX_LAYERS`` input ports on a model class."""
    for i in range(MAX_LAYERS):
        setattr(cls, f"a_in{i}", LavaPyType(PyInPort.VEC_DENSE, dtype))
    return cls


@implements(proc=ActivityCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyActivityCounterFixed(_PyActivityCounterModel):
    """Fixed-point model (spikes arrive as integers)."""


@implements(proc=ActivityCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyActivityCounterFloat(_PyActivityCounterModel):
    """Floating-point model (spikes arrive as floats)."""


_with_ports(PyActivityCounterFixed, np.int32)
_with_ports(PyActivityCounterFloat, float)
