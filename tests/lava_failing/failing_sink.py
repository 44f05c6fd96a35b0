"""A sink that raises at a chosen timestep: the failure mid-run of the clean-shutdown tests.

It lives in its own folder because Lava finds process models by importing every module beside
the process class.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class FailingSink(AbstractProcess):
    """Receives spikes and raises ``RuntimeError`` at timestep ``fail_at``."""

    def __init__(self, *, shape: tuple[int, ...], fail_at: int) -> None:
        super().__init__(shape=shape, fail_at=fail_at)
        self.a_in = InPort(shape=shape)


@implements(proc=FailingSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFailingSinkModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def run_spk(self) -> None:
        self.a_in.recv()
        if self.time_step == self.proc_params["fail_at"]:
            raise RuntimeError(f"injected failure at step {self.time_step}")
