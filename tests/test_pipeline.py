"""Train → export → Lava on a tiny run: files, stock NetX loading, and torch/Lava agreement."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import lava_run, run_cli
from lava.lib.dl import netx

from chipnet.decision import predict
from lava_runtime.simulate import simulate
from train.data import FrameDataset
from train.loop import load_checkpoint


def test_training_writes_checkpoint_metrics_and_config(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["epochs"]] == [1, 2]
    for row in metrics["epochs"]:
        assert {"train_loss", "train_accuracy", "test_loss", "test_accuracy"} <= set(row)
        assert 0.0 <= row["test_accuracy"] <= 1.0
    assert metrics["test_accuracy"] == metrics["epochs"][-1]["test_accuracy"]
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert cfg["input_size"] == 16 and cfg["timesteps"] == 8 and cfg["channels"] == [4]
    state = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["classes"]) == 11


def test_export_is_loaded_by_stock_netx(tiny_run):
    path = tiny_run / "model.net"
    net = netx.hdf5.Network(net_config=str(path))
    assert net.inp.shape == (16, 16, 2)  # input layer shape, WHC
    assert [layer.block for layer in net.layers] == ["Conv", "Dense", "Dense"]
    assert net.out.shape == (11,)
    with h5py.File(path) as h:
        assert h["layer/0/type"][0] == b"input"
        assert json.loads(h.attrs["timesteps"]) == 8
        assert len(json.loads(h.attrs["classes"])) == 11


def _torch_layer_spikes(net, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        outs = net.forward_all(torch.from_numpy(x.astype(np.float32)))
    outs = [o.numpy() for o, b in zip(outs, net.blocks) if type(b).__name__ != "Flatten"]
    return [o.transpose(0, 3, 2, 1, 4) if o.ndim == 5 else o for o in outs]  # NCHWT -> N,W,H,C,T


@pytest.mark.lava
def test_lava_sim_matches_torch_spike_for_spike_on_dataset_samples(tiny_run):
    net, cfg, _ = load_checkpoint(tiny_run, "best.pt")  # the exported (selected) checkpoint
    data = FrameDataset(
        cfg.dataset, "test", cfg.input_size, cfg.timesteps, cfg.dataset_options, cache_dir=None, limit=6
    )
    lava = simulate(tiny_run / "model.net", data.spikes, backend="sim", record="all")
    expected = _torch_layer_spikes(net, data.spikes)
    assert len(lava) == len(expected)
    for rec, ref in zip(lava, expected):
        np.testing.assert_array_equal(rec.spikes, ref, err_msg=rec.name)
        np.testing.assert_array_equal(rec.counts, ref.reshape(ref.shape[0], -1, ref.shape[-1]).sum(1))
    assert lava[0].counts.sum() > 0  # the comparison is not of two silent networks
    torch_pred = predict(expected[-1])
    lava_pred = predict(lava[-1].spikes)
    np.testing.assert_array_equal(lava_pred, torch_pred)


@pytest.mark.lava
def test_lava_sim_matches_torch_on_random_inputs(tiny_run):
    net, _, _ = load_checkpoint(tiny_run, "best.pt")  # the exported (selected) checkpoint
    rng = np.random.default_rng(0)
    x = (rng.random((3, 2, 16, 16, 8)) < 0.3).astype(np.uint8)
    lava = simulate(tiny_run / "model.net", x, backend="sim", record="all")
    for rec, ref in zip(lava, _torch_layer_spikes(net, x)):
        np.testing.assert_array_equal(rec.spikes, ref, err_msg=rec.name)


@pytest.mark.lava
def test_run_cli_writes_report_with_counts(tiny_run):
    report_path = tiny_run / "report.json"
    proc = run_cli(
        *lava_run(str(tiny_run / "model.net")),
        "--split",
        "test",
        "--samples",
        "5",
        "--report",
        str(report_path),
    )
    assert "accuracy" in proc.stdout
    report = json.loads(report_path.read_text())
    assert report["backend"] == "sim" and report["samples"] == 5 and report["timesteps"] == 8
    assert 0.0 <= report["accuracy"] <= 1.0
    assert [layer["neurons"] for layer in report["layers"]] == [8 * 8 * 4, 16, 11]
    assert report["totals"]["spikes"] == sum(layer["spikes"] for layer in report["layers"])
    assert report["predictions"] and len(report["predictions"]) == 5
    assert (tiny_run / "report_spikes.png").stat().st_size > 1000
    # The same samples through the torch model give the same predictions.
    net, cfg, _ = load_checkpoint(tiny_run, "best.pt")  # the exported (selected) checkpoint
    data = FrameDataset(
        cfg.dataset, "test", cfg.input_size, cfg.timesteps, cfg.dataset_options, cache_dir=None, limit=5
    )
    torch_pred = predict(_torch_layer_spikes(net, data.spikes)[-1])
    assert report["predictions"] == torch_pred.tolist()
    accuracy = float((torch_pred == data.labels).mean())
    assert report["accuracy"] == accuracy
