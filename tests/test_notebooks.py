"""Every notebook runs top to bottom (tiny settings), so none can rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for all notebooks: later ones use the runs of earlier ones."""
    return tmp_path_factory.mktemp("notebooks")


def test_there_are_three_notebooks():
    assert [p.stem for p in NOTEBOOKS] == ["01_train", "02_export", "03_lava"]


# 03_lava runs the exported network on Lava's simulator.
@pytest.mark.parametrize(
    "path", [pytest.param(p, id=p.stem, marks=[pytest.mark.lava] if p.stem == "03_lava" else []) for p in NOTEBOOKS]
)
def test_notebook_runs(path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NOTEBOOK_QUICK", "1")
    nb = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), (
        "commit notebooks without outputs"
    )
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
