"""The import contract: which package may import which, and what each entry point loads.

Layers, bottom to top (docs/design.md, "Layers"): ``chipnet`` (the chip and its file; numpy and
h5py) < ``train`` (torch, SLAYER) < ``lava_runtime`` (runs files: the emulator, reports, and Lava
processes in graph, simulate, float_units and processes/) < ``export`` (folds a trained run and
checks the file on the runtime's emulator). No package imports one above it, and ``lava_runtime``
takes only datasets (``train.data``) from ``train``. Export does not load the Lava runtime.
"""

from __future__ import annotations

import ast
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


@pytest.mark.parametrize("module", ["lava_runtime.runner", "lava_runtime.report", "lava_runtime.emu"])
def test_runtime_front_loads_no_lava_runtime(module):
    loaded = _loaded_after(module)
    assert [m for m in loaded if m.startswith("lava.magma.runtime") or m in LAVA_ONLY[:2]] == []


PACKAGES = {"chipnet": 0, "train": 1, "lava_runtime": 2, "export": 3}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in ``path`` (top level and inside functions): ``(line, module)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_no_package_imports_one_above_it():
    wrong = []
    for package, level in PACKAGES.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top not in PACKAGES or top == package:
                    continue
                if PACKAGES[top] > level or (
                    package == "lava_runtime" and top == "train" and not module.startswith("train.data")
                ):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == []


def test_the_base_loads_neither_torch_nor_lava():
    for module in ("chipnet.netfile", "chipnet.netwriter", "chipnet.decision", "chipnet.events", "chipnet.formats"):
        loaded = _loaded_after(module)
        assert [m for m in loaded if m.split(".")[0] in ("torch", "lava", "train", "export", "lava_runtime")] == []


def test_comparing_reports_loads_no_torch(tmp_path):
    loaded = _loaded_after("lava_runtime.__main__")
    assert [m for m in loaded if m.split(".")[0] in ("torch", "lava", "train", "export")] == []
    report = {"samples": 1, "timesteps": 2, "backend": "emu", "accuracy": 1.0, "layers": [], "totals": {"spikes": 0}}
    paths = [tmp_path / name / "report.json" for name in ("a", "b")]
    for path in paths:
        path.parent.mkdir()
        path.write_text(json.dumps(report))
    probe = (
        "import json, sys\nfrom lava_runtime.__main__ import main\nrc = main(['compare', *sys.argv[1:]])\n"
        "print(json.dumps([rc, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lava', 'train'))]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", probe, *map(str, paths)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    rc, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert (rc, heavy) == (0, []), out.stderr
