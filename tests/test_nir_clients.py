"""NIR files run in the field's own simulators (real Norse 1.1 and snnTorch 1.0) spike for spike like emu-float."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
from conftest import TINY_CONFIG, run_cli
from netfactory import conv, dense, write_net

from chipnet.errors import ExportError
from chipnet.netfile import read_net
from export.nir_clients import run_norse, run_snntorch
from export.nir_graph import PERFECT_INTEGRATOR_STEPS, to_nir, write_nir
from lava_runtime.emu import emulate_local

# The `make demo` network's shape (train/configs/demo.yaml), trained briefly on a small set.
DEMO_SIZED = (
    TINY_CONFIG.replace("model: vgg", "model: sma-azo-vgg")
    .replace("input_size: 16", "input_size: 32")
    .replace("timesteps: 8", "timesteps: 16")
    .replace("channels: [4]", "channels: [8, 16]")
    .replace("hidden: 16", "hidden: 64")
    .replace("epochs: 2", "epochs: 1")
    .replace("samples_per_class: 3", "samples_per_class: 2")
)


def identical(a: np.ndarray, b: np.ndarray) -> int:
    """Samples whose whole output spike trains are identical."""
    return int((a.reshape(len(a), -1) == b.reshape(len(b), -1)).all(1).sum())


@pytest.fixture(scope="module")
def demo_sized(tmp_path_factory):
    """A demo-sized SMA run exported twice: per-timestep NetX (its NIR the static fold, dt 1e-3) and static (dt 1e-4)."""
    base = tmp_path_factory.mktemp("demo_sized")
    config = base / "demo.yaml"
    config.write_text(DEMO_SIZED + f"cache_dir: {base / 'cache'}\n")
    run = base / "run"
    run_cli("train/run.py", "--config", str(config), "--out", str(run))
    common = ("--run", str(run), "--calib-samples", "16", "--verify-samples", "4", "--nir")
    run_cli("export/to_netx.py", *common, "--out", str(run / "model.net"))
    run_cli("export/to_netx.py", *common, "--out", str(run / "static.net"), "--sma", "static", "--nir-dt", "1e-4")
    return run


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    """A plain conv-conv-dense-dense net with biases and zero decays (a perfect integrator in v and in I)."""
    rng = np.random.default_rng(1)
    specs = [
        conv(
            2,
            8,
            (3, 3),
            rng,
            stride=(2, 2),
            padding=(1, 1),
            vth=80,
            weights=(-48, 64),
            bias=np.array([4, -2, 0, 6, 2, 0, 0, 8]),
        ),
        conv(8, 16, (7, 7), rng, stride=(2, 2), padding=(3, 3), weights=(-20, 20), vth=100, i_decay=0),
        dense(16 * 8 * 8, 64, rng, vth=80, weights=(-12, 12), v_decay=0, bias=(np.arange(64) % 5) * 2),
        dense(64, 11, rng, vth=80, weights=(-40, 48)),
    ]
    path = write_net(tmp_path_factory.mktemp("vgg") / "vgg.net", (2, 32, 32), specs, 16)
    spikes = (rng.random((16, 2, 32, 32, 16)) < 0.15).astype(np.uint8)
    return read_net(path), spikes


def test_nir_parameters_follow_the_cuba_equations(vgg, tmp_path):
    net, _ = vgg
    path = write_nir(net, tmp_path / "vgg.nir", dt=1e-4)
    g = nir.read(path)
    assert g.metadata["dt"] == 1e-4 and g.metadata["sma_form"] == "none"
    n0, n1, n2 = (g.nodes[f"{k}_neuron"] for k in range(3))
    # Bias: the synapse's is zero; v_leak = bias / α_v, so one Euler step adds exactly the bias.
    assert not g.nodes["0_synapse"].bias.any() and not g.nodes["2_synapse"].bias.any()
    np.testing.assert_allclose(n0.v_leak[:, 0, 0] / n0.r[:, 0, 0], net.layers[0].bias, rtol=1e-12)
    assert np.all(n0.tau_mem == 1e-4 * (4096 / 123)) and np.all(n0.tau_syn == 1e-4 * 4.0)
    # Zero decays: a finite τ and its gain, no longer τ = inf with a gain of 1.
    assert np.all(n1.tau_syn == 1e-4 * PERFECT_INTEGRATOR_STEPS) and np.all(n1.w_in == PERFECT_INTEGRATOR_STEPS)
    assert np.all(n2.tau_mem == 1e-4 * PERFECT_INTEGRATOR_STEPS) and np.all(n2.r == PERFECT_INTEGRATOR_STEPS)
    for node in (n0, n1, n2):  # what snnTorch checks: r == tau_mem / dt, w_in · dt / tau_syn == 1
        np.testing.assert_allclose(node.r, node.tau_mem / 1e-4, rtol=1e-12)
        np.testing.assert_allclose(node.w_in * 1e-4 / node.tau_syn, 1.0, rtol=1e-12)
    with pytest.raises(ExportError, match="--nir-dt"):
        to_nir(net, dt=0.0)


def test_demo_sized_static_fold_runs_identically_in_norse_and_snntorch(demo_sized):
    from train.data import FrameDataset
    from train.loop import load_checkpoint

    static = read_net(demo_sized / "static.net")
    norse_file = nir.read(demo_sized / "model.nir")  # beside the per-timestep export, dt 1e-3
    snn_file = nir.read(demo_sized / "static.nir")  # --nir-dt 1e-4
    assert any(layer.gain is not None for layer in read_net(demo_sized / "model.net").layers)
    assert norse_file.metadata["sma_form"] == "static" and "input_gain" not in norse_file.metadata
    assert norse_file.metadata["dt"] == 1e-3 and snn_file.metadata["dt"] == 1e-4
    np.testing.assert_array_equal(norse_file.nodes["1_synapse"].weight, static.layers[1].weight)  # the same fold
    _, cfg, _ = load_checkpoint(demo_sized)
    test = FrameDataset(cfg.dataset, "test", cfg.input_size, cfg.timesteps, cfg.dataset_options, cache_dir=None)
    ref = emulate_local(static, test.spikes, "float")
    assert all(int(layer.sum()) > 0 for layer in ref)
    n = len(test.spikes)
    assert identical(run_norse(norse_file, test.spikes), ref[-1]) == n
    assert identical(run_snntorch(snn_file, test.spikes), ref[-1]) == n


def test_vgg_with_biases_and_zero_decays_runs_identically_in_norse(vgg):
    net, spikes = vgg
    ref = emulate_local(net, spikes, "float")
    assert 0 < int(ref[-1].sum()) < ref[-1].size
    assert identical(run_norse(to_nir(net, 1e-3), spikes), ref[-1]) == len(spikes)


def test_snntorch_runs_zero_decays_and_refuses_biases(vgg):
    net, spikes = copy.deepcopy(vgg)
    with pytest.raises(AssertionError, match="v_leak not supported"):  # snnTorch 1.0's own check
        run_snntorch(to_nir(net, 1e-4), spikes)
    with pytest.raises(ExportError, match="--nir-dt 0.0001"):
        run_snntorch(to_nir(net, 1e-3), spikes)
    for layer in net.layers:
        layer.bias = None
    ref = emulate_local(net, spikes, "float")
    assert 0 < int(ref[-1].sum()) < ref[-1].size
    assert identical(run_snntorch(to_nir(net, 1e-4), spikes), ref[-1]) == len(spikes)
    assert identical(run_norse(to_nir(net, 1e-3), spikes), ref[-1]) == len(spikes)
