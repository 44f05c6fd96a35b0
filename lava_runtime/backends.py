"""Backends: which Lava run configuration executes the network."""
from __future__ import annotations

import importlib.util

from lava.magma.core.run_configs import AbstractLoihiRunCfg, Loihi2SimCfg

from lava_runtime.errors import RuntimeConfigError

BACKENDS = ("sim", "sim-float", "loihi2")


def run_config(backend: str) -> AbstractLoihiRunCfg:
    """The Lava run config for ``backend`` (``sim`` is the bit-accurate fixed-point simulator)."""
    if backend == "sim":
        return Loihi2SimCfg(select_tag="fixed_pt")
    if backend == "sim-float":
        return Loihi2SimCfg(select_tag="floating_pt")
    if backend == "loihi2":
        if importlib.util.find_spec("lava.magma.compiler.subcompilers.nc") is None:
            raise RuntimeConfigError(
                "backend 'loihi2' needs Intel's lava-loihi extension (available to Intel Neuromorphic "
                "Research Community members), which is not installed here; use --backend sim"
            )
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg()
    raise RuntimeConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
