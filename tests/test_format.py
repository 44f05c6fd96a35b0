"""The code is as ``ruff format`` (line-length 120, pyproject.toml) writes it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["train", "export", "lava_runtime", "tests", "bench"]


def _ruff() -> list[str] | None:
    """The ruff command: the one installed beside this Python (the dev extra), else one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ruff")
    return [found] if found else None


def test_code_is_ruff_formatted():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]' installs it)")
    proc = subprocess.run([*ruff, "format", "--check", *FOLDERS], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"run `ruff format {' '.join(FOLDERS)}`:\n{proc.stdout}{proc.stderr}"
