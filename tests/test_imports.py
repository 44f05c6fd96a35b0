"""Export does not load the Lava runtime: only graph, simulate, backends, float_units and processes/ run Lava."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAVA_ONLY = ("lava_runtime.simulate", "lava_runtime.graph", "lava_runtime.backends", "lava_runtime.processes")


def _loaded_after(module: str) -> list[str]:
    """The modules a fresh interpreter holds after importing ``module``."""
    probe = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_export_pipeline_loads_no_lava_runtime():
    loaded = _loaded_after("export.pipeline")
    assert [m for m in loaded if m in LAVA_ONLY or m.startswith("lava_runtime.processes.")] == []
    # lava-dl's slayer does not import NetX (``import lava.lib.dl.slayer`` loads no ``lava.magma``
    # module), so the whole of Lava's runtime, and NetX with it, can stay out.
    assert [m for m in loaded if m.startswith("lava.magma.runtime")] == []
    assert [m for m in loaded if m.startswith("lava.lib.dl.netx")] == []


@pytest.mark.parametrize("module", ["lava_runtime.deploy", "lava_runtime.report", "lava_runtime.emu"])
def test_runtime_front_loads_no_lava_runtime(module):
    loaded = _loaded_after(module)
    assert [m for m in loaded if m.startswith("lava.magma.runtime") or m in LAVA_ONLY[:2]] == []
