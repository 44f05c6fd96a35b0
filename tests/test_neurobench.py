"""The report's NeuroBench-style figures against the real neurobench library on the same samples."""

from __future__ import annotations

import json

from conftest import run_cli


def test_neurobench_agrees_with_the_emu_report_where_definitions_coincide(tiny_sma_run, tmp_path):
    out = tmp_path / "nb.json"
    proc = run_cli("-m", "export.neurobench", "--run", str(tiny_sma_run), "--samples", "12", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["samples"] == 12 and "effective_acs_per_sample" in proc.stdout
    nb, report = result["neurobench"], result["report"]
    assert nb["effective_acs_per_sample"] == report["effective_acs_per_sample"] > 0
    assert nb["effective_macs_per_sample"] == report["effective_macs_per_sample"] == 0
    assert nb["connection_sparsity"] == round(report["connection_sparsity"], 4)
    assert round(nb["accuracy"] * 12) == round(report["accuracy"] * 12)
    assert abs(nb["activation_sparsity"] - report["activation_sparsity"]) < 1e-12 and nb["activation_sparsity"] < 1
    # The footprints count different things: float32 torch tensors against the chip's 8-bit weights.
    assert nb["footprint_bytes"] > report["footprint_bytes"] > 0
    assert all(result["agree"].values())


def test_neurobench_cli_errors_are_one_line(tmp_path):
    proc = run_cli("-m", "export.neurobench", "--run", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no checkpoint" in proc.stderr and "Traceback" not in proc.stderr
