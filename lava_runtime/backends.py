"""Backends: which Lava run configuration executes the network."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from chipnet.errors import RuntimeConfigError

if TYPE_CHECKING:  # Lava is imported where a run config is built: deploy imports this module without it
    from lava.magma.core.run_configs import AbstractLoihiRunCfg

# "emu" and "emu-float" are lava_runtime.emu, the batched torch emulator of the fixed-point and the
# float arithmetic: no Lava run config.
BACKENDS = ("sim", "sim-float", "emu", "emu-float", "loihi2")
EMULATED = {"emu": "fixed", "emu-float": "float"}


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


def run_config(backend: str) -> AbstractLoihiRunCfg:
    """The Lava run config for ``backend`` (``sim`` is the bit-accurate fixed-point simulator)."""
    from lava.magma.core.run_configs import Loihi2SimCfg

    if backend == "sim":
        return Loihi2SimCfg(select_tag="fixed_pt")
    if backend == "sim-float":
        # The graph must be in float units (lava_runtime.float_units): build_graph(arithmetic="float").
        return Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map=_float_block_models())
    if backend == "loihi2":
        if importlib.util.find_spec("lava.magma.compiler.subcompilers.nc") is None:
            raise RuntimeConfigError(
                "backend 'loihi2' needs Intel's lava-loihi extension (available to Intel Neuromorphic "
                "Research Community members), which is not installed here; use --backend sim"
            )
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg()
    if backend in EMULATED:
        raise RuntimeConfigError(f"backend {backend!r} runs without Lava: use lava_runtime.emu.emulate")
    raise RuntimeConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def run_on_loihi2(net_path: str, spikes: "np.ndarray", timesteps: int, steps: int) -> tuple["np.ndarray", dict]:
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
