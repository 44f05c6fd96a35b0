"""Readouts, losses, trained biases and the affine batch-norm fold: trained → chip form → file → emu, ONNX, Lava."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from chipcheck import LIF, assert_file_equals_chip, tiny_config
from conftest import TINY_CONFIG, lava_run, run_cli

from chipnet.decision import UNDECIDED, decide_voltage
from chipnet.errors import RuntimeConfigError
from chipnet.netfile import read_net
from chipnet.netwriter import write_netx
from export.onnx_graph import run_onnx, write_onnx
from export.weight_range import fill_weight_range
from train.config import TrainConfig
from train.models import build_model
from train.models.fold import calibrate, fold_network, sma_blocks
from train.models.norm import AffineBatchNorm, LearnedBias, NeuronBias, chip_norms
from train.models.readout import VoltageReadout, make_loss

T = 6


def _cfg(model: str = "vgg", readout: str = "voltage") -> TrainConfig:
    return tiny_config(T, model=model, readout=readout)


def _trained(model: str = "vgg", readout: str = "voltage", seed: int = 0) -> torch.nn.Module:
    """A tiny network with batch-norm statistics from a few training batches and nonzero biases."""
    torch.manual_seed(seed)
    net = build_model(_cfg(model, readout), num_classes=3)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net((torch.rand(4, 2, 16, 16, T) < 0.4).float())
        for module in net.modules():
            if isinstance(module, LearnedBias):
                module.value.uniform_(-0.3, 0.3)
            if isinstance(module, AffineBatchNorm):  # a trained affine, not the identity
                module.bn.weight.uniform_(0.5, 2.0)
                module.bn.bias.uniform_(-0.5, 0.5)
    return net.eval()


def _chip(net: torch.nn.Module) -> torch.nn.Module:
    chip = chip_norms(net)
    if sma_blocks(net):
        chip, _ = fold_network(chip, calibrate(net, [(torch.rand(4, 2, 16, 16, T) < 0.4).float()]))
    return fill_weight_range(chip)[0]


def _spikes(n: int = 4, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 2, 16, 16, T)) < 0.4).astype(np.uint8)


def test_voltage_decision_takes_the_largest_final_voltage_and_ties_are_undecided():
    v = np.zeros((3, 4, T))
    v[0, 2, -1] = 5.0  # largest at the end
    v[1, 1, 0], v[1, 3, -1] = 9.0, 1.0  # only the last step counts
    v[2, :, -1] = 2.0  # all equal: undecided
    d = decide_voltage(v)
    assert d.predictions.tolist() == [2, 3, UNDECIDED] and d.undecided == 1


def test_losses_fit_their_readouts_and_a_silent_output_costs_a_uniform_guess():
    with pytest.raises(ValueError, match="does not fit readout 'voltage'"):
        make_loss("voltage", "spike-rate")
    y = torch.tensor([0, 2])
    silent = torch.zeros(2, 11, T)
    assert float(make_loss("spikes", "ce")(silent, y)) == pytest.approx(math.log(11))
    # The spike-rate loss of a silent output is far below its loss at a typical initial rate: silence pays.
    rate = make_loss("spikes", "spike-rate")
    assert float(rate(silent, y)) < 0.2 * float(rate((torch.rand(2, 11, T) < 0.18).float(), y))
    v = torch.zeros(2, 11, T)
    v[0, 0, -1] = 10 * T  # v_T / T = 10 for the true class
    assert float(make_loss("voltage", "mse")(v, y)) == pytest.approx((81 + 1) / 22)


def test_a_mismatched_loss_is_a_config_error_before_any_data_is_binned(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(TINY_CONFIG + "readout: voltage\nloss: spike-rate\ncache_dir: /nonexistent/never\n")
    proc = run_cli("train/run.py", "--config", str(config), "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode != 0 and "does not fit readout 'voltage'" in proc.stderr
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_biases_sit_on_dense_neurons_and_batch_norm_on_convs():
    net = _trained()
    kinds = [type(getattr(b.neuron, "norm", None)).__name__ for b in net.blocks if hasattr(b, "neuron")]
    assert kinds == ["AffineBatchNorm", "AffineBatchNorm", "LearnedBias", "LearnedBias"]
    assert isinstance(net.blocks[-1], VoltageReadout)
    # Checkpoints load into a freshly built model.
    fresh = build_model(_cfg(), num_classes=3)
    fresh.load_state_dict(net.state_dict())


def test_batch_norm_fold_keeps_the_trained_model():
    """Folding γ/σ into the weights and β - γm/σ into the bias rescales, then rounds to the file's grids:
    each conv's drive is the trained normalised current times the layer's factor ``c`` (which the
    threshold takes too), within 8-bit rounding, and the chip form spikes almost as the trained model.

    (Attention blocks pool their attention from the current, which the fold rescales: their chip
    form is folded with the trained model's calibration, as export does; the file test covers it.)
    """
    net = _trained("vgg")
    chip = fill_weight_range(chip_norms(net))[0]
    assert all(isinstance(b.neuron.norm, NeuronBias) for b in chip.blocks if getattr(b, "neuron", None) is not None)
    x = torch.from_numpy(_spikes(16).astype(np.float32))
    with torch.no_grad():
        trained, deployed = net.forward_all(x), chip.forward_all(x)
        for i, inputs in ((0, x), (1, trained[0])):
            a, b = net.blocks[i], chip.blocks[i]
            c = b.neuron.threshold / a.neuron.threshold
            want = a.neuron.norm(a.synapse(inputs))
            got = b.neuron.norm(b.synapse(inputs)) / c
            assert c > 1 and float((got - want).abs().max()) <= 0.05 * float(want.abs().max())
    for a, b in zip(trained[:-1], deployed[:-1]):
        assert a.sum() > 0 and float((a != b).float().mean()) <= 0.05


@pytest.mark.parametrize("model", ["vgg", "sma-vgg"])
def test_voltage_readout_file_equals_the_chip_form_value_for_value_on_emu_and_onnx(model, tmp_path):
    chip = _chip(_trained(model))
    path = write_netx(chip, tmp_path / "m.net", {"timesteps": T, "readout": "voltage"})
    netfile = read_net(path)
    assert netfile.readout == "voltage"
    spikes = _spikes()
    records = assert_file_equals_chip(chip, netfile, spikes)
    assert len(set(decide_voltage(records[-1].voltage).predictions.tolist())) >= 1
    write_onnx(netfile, tmp_path / "m.onnx")
    *_, onnx_v = run_onnx(tmp_path / "m.onnx", spikes, voltage=True)
    np.testing.assert_array_equal(onnx_v, records[-1].voltage)


@pytest.fixture(scope="module")
def voltage_run(tmp_path_factory):
    """A tiny run trained with the new recipe (voltage readout, batch norm, biases, LIF-like neurons), exported."""
    base = tmp_path_factory.mktemp("tiny_voltage")
    config = base / "tiny.yaml"
    extra = (
        "norm: batch\nbias: true\nreadout: voltage\nloss: ce\nwarmup_epochs: 1\nscheduler: cosine\n"
        f"neuron: {json.dumps(LIF)}\ncache_dir: {base / 'cache'}\n"
    )
    config.write_text(TINY_CONFIG.replace("channels: [4]", "channels: [4, 6]") + extra)
    run = base / "run"
    out = run_cli("train/run.py", "--config", str(config), "--out", str(run))
    run_cli("export/to_netx.py", "--run", str(run), "--out", str(run / "model.net"))
    return run, out.stdout + out.stderr


def test_training_reports_rates_gradients_undecided_and_the_best_test_epoch(voltage_run):
    run, log = voltage_run
    metrics = json.loads((run / "metrics.json").read_text())
    row = metrics["epochs"][-1]
    assert set(row["grad_norm"]) >= {"0:Conv", "1:Conv", "4:VoltageReadout"}
    assert all(v > 0 for v in row["grad_norm"].values())
    assert "4:VoltageReadout" not in row["firing_rate"] and "0:Conv" in row["firing_rate"]
    assert row["silent_share"] is None and 0 <= row["undecided_share"] <= 1
    best = metrics["test_accuracy_best_epoch"]
    assert best["accuracy"] == max(r["test_accuracy"] for r in metrics["epochs"])
    assert "grad norms [" in log and (run / "layers.png").stat().st_size > 0
    report = json.loads((run / "export.json").read_text())
    assert abs(report["accuracy"]["dynamic"] - report["accuracy"]["fixed_point"]) <= 0.1


def test_silent_output_warning_is_one_line():
    from train.monitor import silent_warning

    assert silent_warning({"silent_share": 1.0}, 3).startswith("warning: epoch 3: the output layer was silent")
    assert silent_warning({"silent_share": 0.5}, 3) is None and silent_warning({"silent_share": None}, 3) is None


@pytest.mark.lava
def test_voltage_readout_runs_on_the_lava_simulator_as_on_emu(voltage_run, tmp_path):
    run, _ = voltage_run
    net = run / "model.net"
    out = run_cli("-m", "lava_runtime", "validate", "--net", str(net), "--dataset", "synthgesture", "--samples", "3")
    assert "3/3 samples identical" in out.stdout
    npy, report = tmp_path / "v.npy", tmp_path / "r.json"
    out = run_cli(*lava_run(net), "--backend", "sim", "--samples", "3", "--spikes", str(npy), "--report", str(report))
    assert "output voltage written to" in out.stdout
    rep = json.loads(report.read_text())
    assert rep["decision"] == "output voltage at the end of the window" and rep["agreement"] == 1.0
    saved = np.load(npy)
    assert saved.shape[0] == 3 and saved.shape[-1] == 8
    assert decide_voltage(saved).predictions.tolist() == rep["predictions"]


def test_loihi2_refuses_a_voltage_readout_in_one_line(voltage_run):
    from lava_runtime.simulate import _loihi2_layers

    run, _ = voltage_run
    with pytest.raises(RuntimeConfigError, match="voltage readout is not read on loihi2"):
        _loihi2_layers(read_net(run / "model.net"), np.zeros((1, 2, 16, 16, 8), np.uint8))


def test_bias_rounding_keeps_the_steps_a_neuron_fires_at_on_its_bias_alone():
    from train.models.norm import bias_units

    # Measured case: a bias just above the threshold would round onto it and stop firing at step 1.
    assert round(71.4) == 71 and bias_units(71.4, 71, keep=0.5) == 72
    # Just below: stays at the threshold (no spike at step 1, a spike at step 2 as trained: 71·1.5 > 71).
    assert bias_units(70.8, 71, keep=0.5) == 71
    # With keep 0.5, v_t → 2b: a bias just above θ/2 keeps firing eventually, one just below never does.
    assert bias_units(35.6, 71, keep=0.5) == 36 and bias_units(35.4, 71, keep=0.5) == 35
    assert bias_units(-3.4, 71, keep=0.5) == -3 and bias_units(12.2, 71, keep=0.5) == 12
