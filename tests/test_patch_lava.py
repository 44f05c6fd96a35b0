"""scripts/patch_lava.py: lava-nc 0.10.0's var_model.py patched once, recognised after, anything else refused."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("patch_lava", ROOT / "scripts" / "patch_lava.py")
patch_lava = importlib.util.module_from_spec(spec)
spec.loader.exec_module(patch_lava)


def released_text() -> str:
    """lava-nc 0.10.0's file, rebuilt from the installed (patched) one."""
    text = patch_lava.find().read_bytes().decode()
    if patch_lava.sha256(text) == patch_lava.PATCHED_SHA256:
        text = text.replace(patch_lava.DEFAULT_NEW, patch_lava.DEFAULT_OLD)
        text = text.replace(patch_lava.IMPORT_NEW, patch_lava.IMPORT_OLD)
    return text


def run(path: Path) -> subprocess.CompletedProcess:
    script = ROOT / "scripts" / "patch_lava.py"
    return subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True)


def test_the_installed_lava_nc_is_patched_and_imports():
    assert patch_lava.sha256(patch_lava.find().read_bytes().decode()) == patch_lava.PATCHED_SHA256
    from lava.magma.compiler.var_model import CoreEncoder

    a, b = CoreEncoder(), CoreEncoder()
    assert a == b and a.x is not b.x  # same values, one ByteEncoder each


def test_patches_the_released_file_once_and_refuses_another(tmp_path):
    f = tmp_path / "var_model.py"
    f.write_bytes(released_text().encode())
    assert patch_lava.sha256(f.read_text()) == patch_lava.ORIGINAL_SHA256
    first = run(f)
    assert first.returncode == 0 and "patched" in first.stdout and "8 ByteEncoder() defaults" in first.stdout
    assert patch_lava.sha256(f.read_text()) == patch_lava.PATCHED_SHA256
    again = run(f)
    assert again.returncode == 0 and "already patched" in again.stdout
    f.write_text(released_text() + "# another release\n")
    other = run(f)
    assert other.returncode == 1 and "refusing" in other.stderr and other.stderr.count("\n") == 1
    assert f.read_text().endswith("# another release\n")
