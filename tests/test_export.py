"""Export of an SMA run: folding, both NetX forms, export.json, ONNX, NIR, Loihi limits."""

from __future__ import annotations

import json

import h5py
import nir
import numpy as np
import onnx
import pytest
from conftest import run_cli
from lava.lib.dl import netx

from chipnet.netfile import read_net
from export.constraints import ConstraintError, check
from export.nir_graph import write_nir
from export.onnx_graph import run_onnx
from lava_runtime import emu


@pytest.fixture(scope="module")
def exported(tiny_sma_run):
    """Both forms of the tiny SMA run, written by the CLI with ONNX and NIR."""
    paths = {}
    for mode in ("per-timestep", "static"):
        out = tiny_sma_run / f"{mode}.net"
        run_cli(
            "export/to_netx.py",
            "--run",
            str(tiny_sma_run),
            "--out",
            str(out),
            "--sma",
            mode,
            "--calib-samples",
            "16",
            "--onnx",
            "--nir",
        )
        paths[mode] = out
    return paths


def test_both_forms_load_in_stock_netx_and_only_per_timestep_has_gains(exported):
    for mode, path in exported.items():
        net = netx.hdf5.Network(net_config=str(path))
        assert net.out.shape == (11,) and len(net.layers) == 4
        with h5py.File(path) as h:
            has_gain = ["gain_mant" in h[f"layer/{i}"] for i in range(1, 6) if "type" in h[f"layer/{i}"]]
            assert any(has_gain) == (mode == "per-timestep")
            if mode == "per-timestep":
                assert h["layer/2/gain_mant"].shape == (8, 6)  # [T, C] of the SMA layer
                assert h["layer/2/weight"].shape == (6, 4, 7, 7)  # branches merged into one 7×7 kernel


def test_export_json_reports_three_accuracies_and_a_layer_table(exported):
    report = json.loads((exported["per-timestep"].parent / "export.json").read_text())
    assert report["sma_mode"] == "static"  # both exports write export.json beside the file; static ran last
    acc = report["accuracy"]
    for key in ("dynamic", "folded_float", "fixed_point"):
        assert 0.0 <= acc[key] <= 1.0
    assert acc["drop_total_pp"] == pytest.approx(100 * (acc["dynamic"] - acc["fixed_point"]))
    assert len(report["fold_rel_error"]) == 1 and 0.0 <= report["fold_rel_error"][0] < 1.0
    names = [row["name"] for row in report["layers"]]
    assert names == ["0:conv", "1:conv", "2:dense", "3:dense"]
    assert report["layers"][1]["fan_in"] == 4 * 7 * 7
    assert report["cores_estimate"] >= 4
    cost = report["per_inference"]  # emu on the first test samples: the file's fixed point
    assert cost["neurons"] == sum(row["neurons"] for row in report["layers"])
    assert cost["samples"] >= 1 and cost["spikes"] > 0 and cost["synops"] > 0 and cost["energy_uj"] > 0
    # The selected checkpoint, chosen on validation, is what was exported; calibration took 16 train-part samples.
    metrics = json.loads((exported["per-timestep"].parent / "metrics.json").read_text())
    assert report["checkpoint"] == "best.pt" and report["selection"] == "val_accuracy"
    assert report["selected_epoch"] == metrics["best_epoch"]
    assert report["selected_epoch"] == max(metrics["epochs"], key=lambda r: r["val_accuracy"])["epoch"]
    assert report["calibration_samples"] == 16 and report["calibration_seed"] == 0


def test_fixed_point_accuracy_is_the_emulators(exported, tiny_sma_run):
    from chipnet.decision import predict
    from export.verify import fixed_point_accuracy
    from train.data import FrameDataset
    from train.loop import load_checkpoint

    _, cfg, _ = load_checkpoint(tiny_sma_run)
    test = FrameDataset(cfg.dataset, "test", cfg.input_size, cfg.timesteps, cfg.dataset_options, cache_dir=None)
    net = read_net(exported["static"])
    records = emu.emulate(net, test.spikes)
    pred = predict(records[-1].spikes)
    assert fixed_point_accuracy(net, test.spikes, test.labels) == float((pred == test.labels).mean())


def test_onnx_step_reproduces_the_fixed_point_spikes_with_gains(exported, tmp_path):
    path = exported["per-timestep"].with_suffix(".onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model)
    net = read_net(exported["per-timestep"])
    assert any(layer.gain is not None for layer in net.layers)
    rng = np.random.default_rng(1)
    x = (rng.random((3, 2, 16, 16, 8)) < 0.3).astype(np.uint8)
    got = run_onnx(path, x)
    for rec, spikes in zip(emu.emulate(net, x, record="all"), got):
        ref = rec.spikes.transpose(0, 3, 2, 1, 4) if rec.spikes.ndim == 5 else rec.spikes
        np.testing.assert_array_equal(spikes, ref, err_msg=rec.name)
    assert sum(int(s.sum()) for s in got) > 0


def test_nir_reads_back_with_the_same_graph(exported, tmp_path):
    net = read_net(exported["per-timestep"])
    static = read_net(exported["static"])
    # Beside a per-timestep export the NIR file holds the static fold (--nir-sma static, the default).
    graph = nir.read(exported["per-timestep"].with_suffix(".nir"))
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds["0_synapse"] == "Conv2d" and kinds["1_synapse"] == "Conv2d"
    assert kinds["2_flatten"] == "Flatten" and kinds["2_synapse"] == "Affine"
    assert all(kinds[f"{k}_neuron"] == "CubaLIF" for k in range(4))
    assert graph.metadata["sma_form"] == "static" and "input_gain" not in graph.metadata
    np.testing.assert_array_equal(graph.nodes["1_synapse"].weight, static.layers[1].weight)
    assert ("3_neuron", "output") in graph.edges
    np.testing.assert_allclose(graph.nodes["0_neuron"].v_threshold, net.layers[0].neuron.vth_mant)
    # The exported form keeps its gains in metadata only (--nir-sma as-exported).
    graph = nir.read(write_nir(net, tmp_path / "gains.nir"))
    assert graph.metadata["sma_form"] == "per-timestep"
    np.testing.assert_array_equal(graph.nodes["1_synapse"].weight, net.layers[1].weight)
    np.testing.assert_array_equal(graph.metadata["input_gain"]["1_neuron"]["mant"], net.layers[1].gain.mant)


def test_loihi_limits_name_the_layer(exported):
    net = read_net(exported["static"])
    net.layers[1].weight[0, 0, 0, 0] = 300
    with pytest.raises(ConstraintError, match=r"layer 1:conv.*\[-256, 254\]"):
        check(net)
    net = read_net(exported["static"])
    net.layers[2].neuron.vth_mant = 1 << 17
    with pytest.raises(ConstraintError, match="layer 2:dense.*17-bit"):
        check(net)


def test_export_cli_errors_are_one_line(tiny_sma_run, tmp_path):
    proc = run_cli(
        "export/to_netx.py", "--run", str(tiny_sma_run), "--out", str(tmp_path / "no" / "m.net"), check=False
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_folded_torch_model_matches_the_fixed_point_file_spike_for_spike(tiny_sma_run, tmp_path):
    """The folded model (with its gain schedule) is what the chip runs: same spikes in every layer."""
    import torch

    from export.pipeline import export_run

    _, folded, netfile = export_run(
        tiny_sma_run, tmp_path / "m.net", sma="per-timestep", calib_samples=8, verify_samples=4
    )
    assert any(layer.gain is not None for layer in netfile.layers)
    rng = np.random.default_rng(3)
    x = (rng.random((4, 2, 16, 16, 8)) < 0.3).astype(np.uint8)
    with torch.no_grad():
        outs = folded.forward_all(torch.from_numpy(x.astype(np.float32)))
    outs = [o.numpy() for o, b in zip(outs, folded.blocks) if type(b).__name__ != "Flatten"]
    records = emu.emulate(netfile, x, record="all")
    assert sum(int(o.sum()) for o in outs) > 0
    for rec, ref in zip(records, outs):
        ref = ref.transpose(0, 3, 2, 1, 4) if ref.ndim == 5 else ref
        np.testing.assert_array_equal(rec.spikes, ref, err_msg=rec.name)


@pytest.mark.lava
def test_normalised_sma_file_with_gains_and_biases_validates_on_the_lava_simulator(exported):
    """tiny_sma_run has weight-scale norm and dropout (dvsgesture.yaml's recipe): its file carries a
    bias in every conv layer, and the Lava simulator spikes as the emulator in every layer."""
    path = exported["per-timestep"]
    with h5py.File(path) as h:
        assert "bias" in h["layer/1"] and "bias" in h["layer/2"] and "gain_mant" in h["layer/2"]
    proc = run_cli("-m", "lava_runtime", "validate", "--net", str(path), "--dataset", "synthgesture", "--samples", "3")
    assert "3/3 samples identical" in proc.stdout and "first mismatch: none" in proc.stdout, proc.stdout
