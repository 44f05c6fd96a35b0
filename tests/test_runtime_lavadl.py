"""Networks written by lava-dl's own writer run identically on stock NetX (Loihi2SimCfg) and our emulator."""

from __future__ import annotations

import numpy as np
import pytest

import lavadl_nets
from lava_runtime.emu import emulate
from lava_runtime.netfile import read_net
from lava_runtime.records import to_lava_order

T = 6
N = 2


def stock_netx(path, x: np.ndarray, input_neurons: bool) -> np.ndarray:
    """Output layer ``[N, *lava_shape, T]`` of stock ``netx.hdf5.Network``, wired as lava-dl's tests wire it.

    A RingBuffer feeds the first block (the input neuron's ``a_in`` where there is one, else the
    network's ``inp``) from step 1; NetX's resets are placed on each sample's first step in each
    layer: ``reset_offset`` 0 where input neurons see frame 0 at step 1, else 1.
    """
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    n, t = x.shape[0], x.shape[-1]
    net = netx.hdf5.Network(net_config=str(path), reset_interval=t, reset_offset=0 if input_neurons else 1)
    layers = len(net.layers)
    lag = layers - 1 if input_neurons else layers  # one step per synapse
    steps = n * t + lag
    lava = to_lava_order(x)  # [N, W, H, C, T]
    stream = np.moveaxis(lava, 0, -2).reshape(*lava.shape[1:-1], n * t)
    stream = np.concatenate([stream, np.zeros((*stream.shape[:-1], steps - n * t), stream.dtype)], -1)
    source = Source(data=stream.astype(np.int32))
    sink = Sink(shape=net.out.shape, buffer=steps)
    source.s_out.connect(net.layers[0].neuron.a_in if input_neurons else net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = sink.data.get()
    finally:
        net.stop()
    window = out[..., lag : lag + n * t].reshape(*out.shape[:-1], n, t)
    return np.moveaxis(window, -2, 0)


@pytest.mark.parametrize(
    "make, shape, input_neurons",
    [
        (lavadl_nets.cuba_conv, (2, 6, 6), True),
        (lavadl_nets.cuba_dense, (10,), False),
    ],
    ids=["input-neurons-conv-5d", "dense-only"],
)
def test_stock_netx_and_emu_agree(tmp_path, make, shape, input_neurons):
    path = make(tmp_path / "net.net")
    net = read_net(path)
    assert net.input_neurons == input_neurons
    # Input neurons take graded payloads on a_in (as lava-dl's tests feed them); synapses take spikes.
    x = lavadl_nets.graded_input(shape, N, T) if input_neurons else lavadl_nets.binary_input(shape, N, T)
    ours = emulate(net, x)[-1].spikes
    stock = stock_netx(path, x, input_neurons)
    assert ours.sum() > 0, "the test network must spike"
    np.testing.assert_array_equal(ours, stock)


@pytest.mark.lava
def test_runtime_sim_matches_emu_in_every_layer_with_input_neurons(tmp_path):
    """Our Lava graph (lead step, NetX's per-layer reset offsets) and emu agree spike for spike, all layers."""
    from lava_runtime.simulate import simulate

    path = lavadl_nets.cuba_conv(tmp_path / "net.net")
    x = lavadl_nets.graded_input((2, 6, 6), N, T, seed=3)
    sim = simulate(path, x, backend="sim", record="all")
    emu = emulate(path, x, record="all")
    assert [r.name for r in sim] == [r.name for r in emu] == ["0:input", "1:conv", "2:dense"]
    for a, b in zip(sim, emu):
        np.testing.assert_array_equal(a.spikes, b.spikes, err_msg=a.name)
        np.testing.assert_array_equal(a.synops, b.synops, err_msg=a.name)
    assert emu[0].synops.sum() == 0  # payloads reach the input neurons without synapses


@pytest.mark.lava
def test_sim_float_matches_emu_float_with_input_neurons(tmp_path):
    from lava_runtime.simulate import simulate

    path = lavadl_nets.cuba_conv(tmp_path / "net.net")
    x = lavadl_nets.graded_input((2, 6, 6), N, T, seed=4)
    sim = simulate(path, x, backend="sim-float")
    emu = emulate(path, x, arithmetic="float")
    assert emu[-1].counts.sum() > 0
    np.testing.assert_array_equal(sim[-1].spikes, emu[-1].spikes)


@pytest.mark.lava
def test_cli_runs_arrays_and_validates(tmp_path, capsys):
    """``run --input/--labels/--spikes`` and ``validate --input`` on a lava-dl file."""
    import json

    from lava_runtime.__main__ import main

    path = lavadl_nets.cuba_conv(tmp_path / "net.net")
    x = lavadl_nets.graded_input((2, 6, 6), 3, T, seed=5)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([0, 1, 2]))
    args = [
        "run",
        "--net",
        str(path),
        "--input",
        str(tmp_path / "x.npy"),
        "--backend",
        "emu",
        "--report",
        str(tmp_path / "report.json"),
        "--spikes",
        str(tmp_path / "out.npy"),
    ]
    assert main(args + ["--labels", str(tmp_path / "y.npy")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accuracy"] is not None and [r["name"] for r in report["layers"]][0] == "0:input"
    out = np.load(tmp_path / "out.npy")
    expected = emulate(path, x)[-1].spikes
    assert out.shape == (3, 4, T)
    np.testing.assert_array_equal(out, expected)
    assert main(args) == 0  # no labels: no accuracy
    assert json.loads((tmp_path / "report.json").read_text())["accuracy"] is None
    np.save(tmp_path / "bad.npy", x[:, :1])
    assert main(args[:3] + ["--input", str(tmp_path / "bad.npy")]) == 2
    assert "input shape [3, 1, 6, 6, 6] must be [N, C, H, W, T]" in capsys.readouterr().err
    dense = lavadl_nets.cuba_dense(tmp_path / "dense.net")
    np.save(tmp_path / "xd.npy", lavadl_nets.binary_input((10,), 2, T))
    assert main(["validate", "--net", str(dense), "--input", str(tmp_path / "xd.npy")]) == 0
    assert "2/2 samples identical" in capsys.readouterr().out


def test_sigma_delta_and_recurrent_files_are_refused_in_one_line(tmp_path):
    import h5py

    from lava_runtime.errors import RuntimeConfigError

    path = lavadl_nets.sdnn(tmp_path / "sdnn.net")
    with pytest.raises(RuntimeConfigError, match=r"sdnn.net: layer 0: neuron type 'SDNN' is not supported yet") as e:
        read_net(path)
    assert "\n" not in str(e.value)
    rec = lavadl_nets.cuba_dense(tmp_path / "rec.net")
    with h5py.File(rec, "a") as h:
        del h["layer/1/type"]
        h["layer/1/type"] = np.array([b"dense_rec"])
    with pytest.raises(RuntimeConfigError, match=r"rec.net: layer 1: recurrent dense layers \(dense_rec\)"):
        read_net(rec)
