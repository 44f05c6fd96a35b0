"""bench/accuracy.py --quick: every model and seed trains, exports and is measured; the table and plot come out."""

from __future__ import annotations

import json

from conftest import run_cli


def test_quick_accuracy_bench_writes_the_table_rows_and_plot(tmp_path):
    out = tmp_path / "bench"
    proc = run_cli("bench/accuracy.py", "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    rows = json.loads((out / "rows.json").read_text())
    models = [r for r in rows if r["kernels"] is None]
    assert sorted({r["model"] for r in models}) == [
        "ma-vgg",
        "sma-azo-vgg",
        "sma-azo-vgg-spiking",
        "sma-vgg",
        "sma-vgg-spiking",
        "vgg",
        "vgg7",
    ]
    # 7 models × 2 seeds, and the ablation set 1 × 2 seeds: set 1-3-5-7 is the config's own, the sma-vgg runs.
    assert len(models) == 14 and len(rows) == 16
    assert [r["kernels"] for r in rows if r["kernels"]] == [[1], [1]]
    for r in rows:
        assert all(0.0 <= r[k] <= 1.0 for k in ("test", "fixed_point", "static_fixed_point"))
        assert r["spikes"] > 0 and r["synops"] > 0 and r["energy_uj"] > 0
    # vgg7 is the like-for-like baseline: the folded SMA layer has the same 7×7 fan-in.
    fan_in = {}
    for r in models:
        export = json.loads((tmp_path / "bench" / r["run"].split("/")[-1] / "export.json").read_text())
        fan_in[r["model"]] = [layer["fan_in"] for layer in export["layers"]]
    assert fan_in["vgg7"] == fan_in["sma-vgg"] == fan_in["sma-azo-vgg"] != fan_in["vgg"]
    assert fan_in["ma-vgg"] == fan_in["vgg"]  # a folded MA layer keeps its 3×3 conv (the gain carries the attention)
    # The spiking form: the SMA layer is a 15×15 conv (3×3 stride 2 composed with 7×7) then a grouped 1×1 of N = 4.
    spiking = fan_in["sma-vgg-spiking"]
    assert len(spiking) == len(fan_in["vgg"]) + 1 and spiking[2] == 4 and spiking[1] == 15 * 15 * fan_in["vgg"][1] // 9
    table = (out / "table.md").read_text()
    assert "| synthgesture | vgg7 | 2 |" in table and "| synthgesture | 1 | 2 |" in table
    ablation = table.split("## Number of SMA scales")[1]
    sma = next(line for line in table.splitlines() if line.startswith("| synthgesture | sma-vgg |"))
    assert sma.replace("sma-vgg", "1-3-5-7") in ablation.splitlines()
    assert "± " in table and table in proc.stdout
    assert (out / "accuracy_vs_energy.png").stat().st_size > 5000
    # Rows already in --out are not run again: a second bench of seed 1 runs only the control it lacks.
    again = run_cli(
        "bench/accuracy.py",
        "--quick",
        "--models",
        "vgg",
        "ma-vgg",
        "sma-vgg-spiking-static",
        "--first-seed",
        "1",
        "--seeds",
        "1",
        "--no-ablation",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    now = json.loads((out / "rows.json").read_text())
    assert now[: len(rows)] == rows and "| synthgesture | ma-vgg | 2 |" in again.stdout
    assert [(r["model"], r["seed"]) for r in now[len(rows) :]] == [("sma-vgg-spiking-static", 1)]
    control = json.loads((out / now[-1]["run"].split("/")[-1] / "export.json").read_text())
    assert [layer["fan_in"] for layer in control["layers"]] == spiking  # the same deployed layers, no attention
    assert "2 of 3 runs already in" in again.stdout and "| synthgesture | sma-vgg-spiking-static | 1 |" in again.stdout


def test_bench_refuses_an_even_or_malformed_kernel_set(tmp_path):
    for bad in ("1-4", "1,3", "0"):
        proc = run_cli("bench/accuracy.py", "--scales", bad, "--out", str(tmp_path), check=False)
        assert proc.returncode == 2 and bad in proc.stderr and "kernel sizes" in proc.stderr
