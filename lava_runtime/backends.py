"""Backends: what runs a network file (Lava's simulator, Loihi 2, or the torch emulator), behind one interface."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chipnet.errors import RuntimeConfigError

if TYPE_CHECKING:  # Lava and torch are imported where a backend runs: the CLI imports this module without them
    from collections.abc import Callable
    from pathlib import Path

    import numpy as np
    from lava.magma.core.run_configs import AbstractLoihiRunCfg

    from chipnet.netmodel import NetFile
    from lava_runtime.records import LayerRecord


@dataclass(frozen=True)
class Backend:
    """One way to run a network file, in ``arithmetic`` ("fixed" or "float").

    ``needs_lava``: runs as Lava processes under :meth:`run_config` (else on ``lava_runtime.emu``).
    ``on_chip``: runs NetX's stock network on Loihi 2, which returns the output layer only.
    """

    name: str
    needs_lava: bool
    arithmetic: str
    on_chip: bool = False
    _config: Callable[[], AbstractLoihiRunCfg] | None = field(default=None, repr=False, compare=False)

    def run_config(self) -> AbstractLoihiRunCfg:
        """Lava's run config for this backend (an emulated backend has none)."""
        if self._config is None:
            raise RuntimeConfigError(f"backend {self.name!r} runs without Lava: use lava_runtime.emu.emulate")
        return self._config()

    def prepare(self) -> None:
        """Import Lava's runtime now if this backend needs it, before any dataset is binned.

        Lava's runtime sets multiprocessing's start method when it is imported, which fails once
        something has fixed the context (tqdm's progress bars create a multiprocessing lock).
        """
        if self.needs_lava:
            import lava_runtime.simulate  # noqa: F401

    def run(
        self, net: str | Path | NetFile, spikes: np.ndarray, record: str = "output", progress: bool = False
    ) -> list[LayerRecord]:
        """Every layer's record of ``spikes`` ``[N, C, H, W, T]``/``[N, F, T]`` run through ``net``."""
        if not self.needs_lava:
            from lava_runtime.emu import emulate

            return emulate(net, spikes, record=record, arithmetic=self.arithmetic)
        from lava_runtime.simulate import simulate  # Lava's runtime, only for a Lava backend

        return simulate(net, spikes, backend=self.name, record=record, progress=progress)


def _float_block_models() -> dict:
    """NetX's block models for a ``floating_pt`` run.

    A NetX block (and our gain network) is a hierarchical process whose only model is tagged
    ``fixed_pt`` although it computes nothing itself; Lava refuses it under another tag. Naming
    the models here lets the float run choose float models for the synapses and neurons inside.
    """
    from lava.lib.dl.netx.blocks import models, process

    from lava_runtime.processes.gain_network import GainNetwork, PyGainNetworkModel

    return {
        process.Input: models.PyInputModel,
        process.Dense: models.PyDenseModel,
        process.Conv: models.PyConvModel,
        GainNetwork: PyGainNetworkModel,
    }


def _sim_config() -> AbstractLoihiRunCfg:
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt")


def _sim_float_config() -> AbstractLoihiRunCfg:
    from lava.magma.core.run_configs import Loihi2SimCfg

    # The graph must be in float units (lava_runtime.float_units): build_graph(arithmetic="float").
    return Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map=_float_block_models())


def _loihi2_config() -> AbstractLoihiRunCfg:
    if importlib.util.find_spec("lava.magma.compiler.subcompilers.nc") is None:
        raise RuntimeConfigError(
            "backend 'loihi2' needs Intel's lava-loihi extension (available to Intel Neuromorphic "
            "Research Community members), which is not installed here; use --backend sim"
        )
    from lava.magma.core.run_configs import Loihi2HwCfg

    return Loihi2HwCfg()


# "sim" is Lava's bit-accurate fixed-point simulator; "emu" and "emu-float" are lava_runtime.emu,
# the batched torch emulator of the fixed-point and the float arithmetic (no Lava run config).
BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("sim", needs_lava=True, arithmetic="fixed", _config=_sim_config),
        Backend("sim-float", needs_lava=True, arithmetic="float", _config=_sim_float_config),
        Backend("emu", needs_lava=False, arithmetic="fixed"),
        Backend("emu-float", needs_lava=False, arithmetic="float"),
        Backend("loihi2", needs_lava=True, arithmetic="fixed", on_chip=True, _config=_loihi2_config),
    )
}

# The fixed-point emulator: every other backend's output is checked against it (a report's agreement).
REFERENCE = BACKENDS["emu"]
# What ``stream`` runs a live window on: the fixed-point backends (the emulator keeps state across
# windows with ``--reset never``; Lava's NetX resets every T steps).
STREAM_BACKENDS = ("emu", "sim", "loihi2")


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a one-line error naming the known ones for any other."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise RuntimeConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


def run_config(backend: str) -> AbstractLoihiRunCfg:
    """The Lava run config of the backend called ``backend``."""
    return get_backend(backend).run_config()


def run_on_loihi2(net_path: str, spikes: np.ndarray, timesteps: int, steps: int) -> tuple[np.ndarray, dict]:
    """Output spikes ``[W?, ..., steps]`` of the stock NetX network on Loihi 2, with the profiler's energy and time.

    ``steps`` covers the samples and the empty steps that carry the last one through the layers.

    Written against Intel's lava-loihi (``lava.proc.embedded_io`` adapters between the CPU
    source/sink and the chip, ``lava.utils.profiler.Profiler`` for energy and execution time) but
    untested here: lava-loihi is not installed in this project's environment. Only the output
    layer leaves the chip (per-layer counters are CPU processes); gain layers have no Loihi 2
    neuron model yet and are refused by the caller.
    """
    import numpy as np
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc import embedded_io as eio
    from lava.proc.io.sink import RingBuffer as SinkBuffer
    from lava.proc.io.source import RingBuffer as SourceBuffer
    from lava.utils.profiler import Profiler

    from lava_runtime.graph import to_lava_layout

    cfg = run_config("loihi2")
    net = netx.hdf5.Network(net_config=str(net_path), reset_interval=timesteps, reset_offset=1)
    source = SourceBuffer(data=to_lava_layout(spikes, steps))
    to_chip = eio.spike.PyToNxAdapter(shape=net.inp.shape)
    from_chip = eio.spike.NxToPyAdapter(shape=net.out.shape)
    sink = SinkBuffer(shape=net.out.shape, buffer=steps)
    source.s_out.connect(to_chip.inp)
    to_chip.out.connect(net.inp)
    net.out.connect(from_chip.inp)
    from_chip.out.connect(sink.a_in)
    profiler = Profiler.init(cfg)
    profiler.execution_time_probe(num_steps=steps)
    profiler.energy_probe(num_steps=steps)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        out = sink.data.get()
    finally:
        net.stop()
    measured = {
        "source": "lava.utils.profiler (Loihi 2 board measurement)",
        "energy_j": float(profiler.energy),
        "static_energy_j": float(profiler.static_energy),
        "execution_time_s": float(np.sum(profiler.execution_time)),
        "power_w": float(profiler.power),
    }
    return out, measured
