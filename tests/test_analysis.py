"""The paper's analyses of a trained run: scale importance per class and spike-rate maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from train.config import NeuronConfig, TrainConfig
from train.loop import load_checkpoint, load_datasets, train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("analysis")
    opts = {
        "dataset": "synthgesture",
        "dataset_options": {"samples_per_class": 2, "seed": 5},
        "input_size": 16,
        "timesteps": 8,
        "channels": [8, 8],
        "hidden": 32,
        "neuron": NeuronConfig(threshold=0.75),
        "epochs": 1,
        "batch_size": 8,
        "seed": 1,
        "cache_dir": str(base / "cache"),
    }
    for model in ("vgg", "sma-azo-vgg"):
        train(TrainConfig(**{**opts, "model": model}), base / model)
    return base


def test_analysis_cli_writes_figures_and_numbers(runs):
    out = runs / "figs"
    proc = run_cli(
        "train/analyze.py", "--run", str(runs / "sma-azo-vgg"), "--baseline", str(runs / "vgg"), "--out", str(out)
    )
    assert "spike rate of block 1" in proc.stdout
    result = json.loads((out / "analysis.json").read_text())
    assert result["samples"] == 22 and result["kernel_sizes"] == [1, 3, 5, 7]
    table = np.array(list(result["scale_importance"]["block1"].values()))
    assert table.shape == (11, 4)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-5)  # shares of the four kernels
    for name in ("scale_importance_block1.png", "spike_rates.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    # The reported rates are the layer's spikes per neuron per step over the same test samples.
    data = load_datasets(load_checkpoint(runs / "vgg")[1])[1]
    x = torch.from_numpy(data.spikes.astype(np.float32))
    for model in ("vgg", "sma-azo-vgg"):
        net, _, _ = load_checkpoint(runs / model)
        with torch.no_grad():
            expected = float(net.forward_all(x)[1].mean())
        assert result["spike_rates"][model] == pytest.approx(expected, rel=1e-6)
    assert result["spike_rates"]["vgg"] > 0


def test_analysis_of_a_plain_vgg_is_a_clear_error(runs):
    proc = run_cli("train/analyze.py", "--run", str(runs / "vgg"), check=False)
    assert proc.returncode == 2 and "no SMA blocks" in proc.stderr and "Traceback" not in proc.stderr
