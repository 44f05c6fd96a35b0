"""Networks written by lava-dl's own writer run identically on stock NetX (Loihi2SimCfg) and our emulator."""

from __future__ import annotations

import lavadl_nets
import numpy as np
import pytest

from chipnet.netfile import read_net
from lava_runtime.emu import emulate
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
    return _run_windows(net, sink, steps, lag, n, t)[1]


def _run_windows(net, sink, steps: int, lag: int, n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Run a wired stock network on the fixed-point simulator: the sink's stream and its ``n`` windows of ``t`` after ``lag``."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = sink.data.get()
    finally:
        net.stop()
    window = out[..., lag : lag + n * t].reshape(*out.shape[:-1], n, t)
    return out, np.moveaxis(window, -2, 0)


@pytest.mark.lava
@pytest.mark.parametrize(
    "make, shape, input_neurons",
    [
        (lavadl_nets.cuba_conv, (2, 6, 6), True),
        (lavadl_nets.cuba_dense, (10,), False),
        (lavadl_nets.sdnn, (2, 8, 8), True),
        (lavadl_nets.sdnn_dense, (8,), True),
    ],
    ids=["input-neurons-conv-5d", "dense-only", "sigma-delta-conv", "sigma-delta-dense"],
)
def test_stock_netx_and_emu_agree(tmp_path, make, shape, input_neurons):
    path = make(tmp_path / "net.net")
    net = read_net(path)
    assert net.input_neurons == input_neurons
    # Input neurons take graded payloads on a_in (as lava-dl's tests feed them); synapses take spikes.
    x = lavadl_nets.graded_input(shape, N, T) if input_neurons else lavadl_nets.binary_input(shape, N, T)
    ours = emulate(net, x)[-1].spikes
    stock = stock_netx(path, x, input_neurons)
    assert np.abs(ours).sum() > 0, "the test network must spike"
    if net.sigma_delta:  # graded: the sigma output sends decoded values, not 0/1
        assert np.abs(ours).max() > 1 and ours.dtype == np.int32
    np.testing.assert_array_equal(ours, stock)


@pytest.mark.lava
def test_sigma_delta_sim_matches_emu_in_every_layer_and_carries_state_across_samples(tmp_path):
    """Our Lava graph and emu: identical graded messages, counts and synops in every layer; no resets."""
    from lava_runtime.simulate import simulate

    path = lavadl_nets.sdnn(tmp_path / "net.net")
    x = lavadl_nets.graded_input((2, 8, 8), 3, 4, seed=6)  # T = 4 < 5 layers: no reset timing to respect
    sim = simulate(path, x, backend="sim", record="all")
    emu = emulate(path, x, record="all")
    assert [r.name for r in emu] == ["0:input", "1:conv", "2:conv", "3:dense", "4:dense"]
    for a, b in zip(sim, emu):
        assert a.graded and b.graded
        np.testing.assert_array_equal(a.spikes, b.spikes, err_msg=a.name)
        np.testing.assert_array_equal(a.counts, b.counts, err_msg=a.name)
        np.testing.assert_array_equal(a.synops, b.synops, err_msg=a.name)
    # Graded messages count one synaptic event per nonzero message and synapse.
    assert emu[1].synops.sum() == int(((emu[0].spikes != 0) * emu[1].topology.fanout[None, ..., None]).sum())
    assert emu[1].synops.sum() > 0
    # NetX does not reset sigma-delta neurons: sample 1 run alone starts from zero state and differs.
    alone = emulate(path, x[1:2], record="all")[-1].spikes
    assert not np.array_equal(alone[0], emu[-1].spikes[1])


def test_sigma_delta_float_backends_are_refused(tmp_path):
    from chipnet.errors import RuntimeConfigError

    path = lavadl_nets.sdnn_dense(tmp_path / "net.net")
    with pytest.raises(RuntimeConfigError, match="sigma-delta networks run in fixed point only"):
        emulate(path, lavadl_nets.graded_input((8,), 1, T), arithmetic="float")


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


@pytest.mark.lava
def test_cli_runs_a_sigma_delta_file_and_saves_graded_output(tmp_path, capsys):
    """``run --input --backend emu --spikes`` on a lava-dl SDNN file; ``validate --input`` agrees with Lava."""
    import json

    from lava_runtime.__main__ import main

    path = lavadl_nets.sdnn_dense(tmp_path / "net.net")
    x = lavadl_nets.graded_input((8,), 3, T, seed=7)
    np.save(tmp_path / "x.npy", x)
    expected = emulate(path, x)[-1].spikes
    labels = expected.astype(np.int64).sum(-1).argmax(-1)  # the documented rule: largest output sum
    np.save(tmp_path / "y.npy", labels)
    args = ["run", "--net", str(path), "--input", str(tmp_path / "x.npy"), "--backend", "emu"]
    args += ["--report", str(tmp_path / "report.json"), "--spikes", str(tmp_path / "out.npy")]
    assert main(args + ["--labels", str(tmp_path / "y.npy")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["resets"] is False and report["decision"] == "graded output sum"
    assert report["accuracy"] == 1.0
    assert report["neurobench"]["effective_macs_per_sample"] > 0  # graded messages are multiplies
    assert report["layers"][0]["synops"] == 0
    # One synaptic event per nonzero message and synapse: layer 1's messages over the file's nonzero weights.
    hidden = emulate(path, x, record="all")[1].spikes
    fan_out = np.count_nonzero(read_net(path).layers[2].file_weight, axis=0)
    assert report["layers"][2]["synops"] == int(((hidden != 0) * fan_out[None, :, None]).sum()) > 0
    out = np.load(tmp_path / "out.npy")
    assert out.dtype == np.int32 and out.shape == (3, 3, T) and np.abs(out).max() > 1
    np.testing.assert_array_equal(out, expected)
    capsys.readouterr()
    assert main(["validate", "--net", str(path), "--input", str(tmp_path / "x.npy")]) == 0
    assert "3/3 samples identical" in capsys.readouterr().out


def test_refused_files_say_why_in_one_line(tmp_path):
    import h5py

    from chipnet.errors import RuntimeConfigError

    def edited(make, name, edit):
        path = make(tmp_path / name)
        with h5py.File(path, "a") as h:
            edit(h)
        return path

    def retype(h, key, value):
        del h[key]
        h[key] = value

    cases = [
        (
            edited(lavadl_nets.sdnn_dense, "act.net", lambda h: retype(h, "layer/1/neuron/activation", b"sigmoid")),
            r"act.net: layer 1: sigma-delta activation 'sigmoid' is not supported \(NetX runs ReLU only\)",
        ),
        (
            edited(
                lavadl_nets.sdnn_dense, "bits.net", lambda h: h.create_dataset("layer/1/neuron/messageBits", data=0)
            ),
            r"bits.net: layer 1: messageBits = 0 on a sigma-delta neuron",
        ),
        (
            edited(lavadl_nets.sdnn_dense, "sigb.net", lambda h: h.create_dataset("layer/2/bias", data=np.ones(3))),
            r"sigb.net: layer 2: a bias on a sigma_output layer is not supported",
        ),
        (
            edited(lavadl_nets.cuba_dense, "mix.net", lambda h: retype(h, "layer/1/neuron/type", b"SDNN")),
            r"mix.net: layer 1: networks that mix CUBA and sigma-delta \(SDNN\) neurons are not supported",
        ),
    ]
    for path, message in cases:
        with pytest.raises(RuntimeConfigError, match=message) as e:
            read_net(path)
        assert "\n" not in str(e.value)
    rec = lavadl_nets.cuba_dense(tmp_path / "rec.net")
    with h5py.File(rec, "a") as h:
        del h["layer/1/type"]
        h["layer/1/type"] = np.array([b"dense_rec"])
    with pytest.raises(RuntimeConfigError, match=r"rec.net: layer 1: recurrent dense layers \(dense_rec\)"):
        read_net(rec)


def stock_netx_with_lavadl_resets(path, x: np.ndarray, resets: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Stock NetX wired as lava-dl's ``test_tinynet`` wires ``tiny.net``: the output stream and its windows.

    ``hdf5.Network`` without ``reset_interval`` (plain LIF neurons); a RingBuffer feeds the input
    neurons' ``a_in`` from step 1; ``io.reset.Reset`` processes (interval ``T``, offset ``i - 1``)
    zero layer ``i``'s ``u`` and ``v`` after step ``i`` of each sample, i.e. just before the
    sample's first frame reaches it. Returns the sink's stream ``[*lava_shape, N·T + L - 1]`` and the
    samples' windows ``[N, *lava_shape, T]`` (``L - 1`` steps of lag: one per synapse). The stream
    is padded with empty steps so that the RingBuffer never wraps back to frame 0. ``resets=False``
    leaves the Reset processes out (the wiring of lava-dl's SDNN tests, which have no resets).
    """
    from lava.lib.dl import netx
    from lava.proc.io.reset import Reset
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    n, t = x.shape[0], x.shape[-1]
    net = netx.hdf5.Network(net_config=str(path))
    lag = len(net.layers) - 1
    steps = n * t + lag
    lava = to_lava_order(x)  # [N, W, H, C, T]
    stream = np.moveaxis(lava, 0, -2).reshape(*lava.shape[1:-1], n * t)
    stream = np.concatenate([stream, np.zeros((*stream.shape[:-1], lag), stream.dtype)], -1)
    source = Source(data=stream.astype(np.int32))
    sink = Sink(shape=net.out_layer.out.shape, buffer=steps)
    source.s_out.connect(net.in_layer.neuron.a_in)
    net.out_layer.out.connect(sink.a_in)
    for i, layer in enumerate(net.layers if resets else []):
        for var in (layer.neuron.u, layer.neuron.v):
            Reset(interval=t, offset=i - 1).connect_var(var)
    return _run_windows(net, sink, steps, lag, n, t)


@pytest.mark.lava
def test_tiny_net_features_run_on_emu_and_sim_as_on_stock_netx_with_lavadl_resets(tmp_path):
    """tiny.net's features (LOIHI input neurons with a transform bias, biased stride-2 convs, 5-D weights,
    graded payloads): ``run --input`` on emu and sim saves stock NetX's output, spike for spike."""
    from chipnet.netmodel import InputLayer
    from lava_runtime.__main__ import main

    path = lavadl_nets.loihi_tiny(tmp_path / "tiny.net")
    net = read_net(path)
    first = net.layers[0]
    assert isinstance(first, InputLayer) and (first.transform_weight, first.transform_bias) == (36, 34)
    assert first.bias is None  # NetX keeps the input transform in a dict it never applies
    x = lavadl_nets.payload_input((2, 13, 13), 3, 8, seed=1)
    stream, stock = stock_netx_with_lavadl_resets(path, x)
    # The convs' biases fire before any input can reach the output: what the resets must clear.
    assert stream[..., : len(net.layers) - 1].sum() > 0
    assert 0 < stock.sum() < stock.size
    np.save(tmp_path / "x.npy", x)
    for backend in ("emu", "sim"):
        out = tmp_path / f"{backend}.npy"
        args = ["run", "--net", str(path), "--input", str(tmp_path / "x.npy"), "--backend", backend]
        assert main(args + ["--report", str(tmp_path / f"{backend}.json"), "--spikes", str(out)]) == 0
        np.testing.assert_array_equal(to_lava_order(np.load(out)), stock, err_msg=backend)


def _one_stream(path, x: np.ndarray, steps: int) -> np.ndarray:
    """The emulator's per-layer arithmetic run as Lava runs an unreset stream: output ``[*lava_shape, steps]``.

    Every layer starts at step 1 from zero state and is never reset; the input neurons take frame
    ``s`` at step ``s + 1``, every other layer its predecessor's spikes one step late.
    """
    import torch

    from lava_runtime.emu import _LayerKernel

    net = read_net(path)
    frames = np.moveaxis(x, -1, 1).reshape(-1, *x.shape[1:-1])  # samples back to back: [N·T, C, H, W]
    s = torch.zeros((steps, 1, *frames.shape[1:]), dtype=torch.float64)
    s[: len(frames), 0] = torch.as_tensor(frames, dtype=torch.float64)
    for k, layer in enumerate(net.layers):
        kernel = _LayerKernel(layer, torch.device("cpu"))
        if k:  # one step of synaptic delay
            s = torch.cat([torch.zeros_like(s[:1]), s[:-1]])
        a = kernel.synapse(s.reshape(steps, *s.shape[2:]))
        s = kernel.neurons(a.reshape(steps, 1, *a.shape[1:]))
    return s[:, 0].permute(3, 2, 1, 0).numpy()  # [steps, C, H, W] -> [W, H, C, steps]


@pytest.mark.lava
def test_without_resets_stock_netx_differs_by_the_bias_warm_up_not_by_the_arithmetic(tmp_path):
    """The wiring of issue 27 (no resets): stock NetX is our arithmetic run as one unreset stream, whose
    biases fire before the input arrives; so its sample windows differ from the runtime's."""
    path = lavadl_nets.loihi_tiny(tmp_path / "tiny.net")
    x = lavadl_nets.payload_input((2, 13, 13), 2, 8, seed=1)
    stream, stock = stock_netx_with_lavadl_resets(path, x, resets=False)
    np.testing.assert_array_equal(stream, _one_stream(path, x, stream.shape[-1]))
    assert stream[..., :2].sum() > 0  # output spikes before any input can reach the output layer
    ours = emulate(path, x)[-1].spikes
    assert not np.array_equal(stock[0], ours[0])
