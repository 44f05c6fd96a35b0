"""Deploy-aware fine-tuning: the folded form trains, reloads from its checkpoint and exports as trained."""

from __future__ import annotations

import json

import h5py
import torch
from conftest import run_cli

from train.loop import load_checkpoint
from train.models.folded import FoldedConv


def test_finetuned_fold_reloads_and_exports_without_folding_again(tiny_sma_run, tmp_path):
    for mode in ("per-timestep", "static"):
        out = tmp_path / mode
        run_cli(
            "train/finetune.py",
            "--run",
            str(tiny_sma_run),
            "--epochs",
            "1",
            "--sma",
            mode,
            "--calib-samples",
            "8",
            "--out",
            str(out),
        )
        metrics = json.loads((out / "metrics.json").read_text())
        assert len(metrics["epochs"]) == 1
        net, cfg, state = load_checkpoint(out)
        assert cfg.folded == mode
        folded = [b for b in net.blocks if isinstance(b, FoldedConv)]
        assert len(folded) == 1 and folded[0].per_timestep == (mode == "per-timestep")
        for name, value in net.state_dict().items():  # the rebuilt shell holds exactly the trained weights
            assert torch.equal(value, state["model"][name]), name
        run_cli("export/to_netx.py", "--run", str(out), "--verify-samples", "4")
        report = json.loads((out / "export.json").read_text())
        assert report["sma_mode"] == mode and report["fold_rel_error"] == []
        with h5py.File(out / "model.net") as h:
            assert ("gain_mant" in h["layer/2"]) == (mode == "per-timestep")
            # The file's threshold is the trained one times the norm's power of two (train/models/norm.py)
            # and the weight-range power of two.
            norm = folded[0].neuron.norm
            scale = float(norm.std(norm.running_var).reshape(-1)[0]) * 2 ** report["weight_range_shift"][1]
            assert int(h["layer/2/neuron/vThMant"][()]) == round(float(folded[0].threshold) * 64 * scale)


def test_finetune_needs_an_sma_run(tiny_run, tmp_path):
    proc = run_cli(
        "train/run.py",
        "--finetune-static",
        "--run",
        str(tiny_run),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "x"),
        check=False,
    )
    assert proc.returncode == 2 and "no attention blocks" in proc.stderr and "Traceback" not in proc.stderr
