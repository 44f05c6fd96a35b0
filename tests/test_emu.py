"""The emulator against Lava's fixed-point simulator (every spike of every layer) and the gain spec."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import lava_run, run_cli
from netfactory import conv, dense, slayer_net, write_net

from chipnet.errors import RuntimeConfigError
from chipnet.netfile import read_net
from chipnet.netmodel import ConvLayer, NetFile
from lava_runtime import emu
from lava_runtime.simulate import simulate
from train.data import FrameDataset
from train.loop import load_checkpoint


def assert_same_records(got, expected, same_gain: bool = True) -> None:
    """Identical names, shapes, per-step counts, (where both recorded) spikes, synops."""
    assert [r.name for r in got] == [r.name for r in expected]
    for a, b in zip(got, expected):
        assert a.shape == b.shape, a.name
        np.testing.assert_array_equal(a.counts, b.counts, err_msg=a.name)
        if a.spikes is not None and b.spikes is not None:
            np.testing.assert_array_equal(a.spikes, b.spikes, err_msg=a.name)
        # What the report derives energy from: synaptic operations and the synapses themselves.
        np.testing.assert_array_equal(a.synops, b.synops, err_msg=a.name)
        assert a.gain == b.gain or not same_gain, a.name
        np.testing.assert_array_equal(a.topology.fanout, b.topology.fanout, err_msg=a.name)
        assert (a.topology.kind, a.topology.synapses, a.topology.params, a.topology.nonzero_params) == (
            b.topology.kind,
            b.topology.synapses,
            b.topology.params,
            b.topology.nonzero_params,
        ), a.name


def random_spikes(rng: np.random.Generator, n: int, shape: tuple[int, int, int], t: int, p: float) -> np.ndarray:
    """Bernoulli input spikes ``[N, C, H, W, T]``."""
    return (rng.random((n, *shape, t)) < p).astype(np.uint8)


def mixed_net(path, rng: np.random.Generator, t: int, gains: bool = False):
    """conv (bias) → grouped strided conv → dilated non-square conv → flatten → dense → dense.

    Every layer has its own threshold and decays, including no current decay and full voltage decay.
    """

    def gain(c: int) -> tuple[np.ndarray, int] | None:
        return (rng.integers(0, 4096, size=(t, c)), 11) if gains else None

    specs = [
        conv(2, 4, (3, 3), rng, padding=(1, 1), vth=30, bias=np.array([3, -2, 0, 5]), gain=gain(4)),
        conv(4, 6, (3, 3), rng, stride=(2, 2), groups=2, vth=25, i_decay=0, v_decay=4096, weights=(-40, 120)),
        conv(
            6,
            4,
            (2, 3),
            rng,
            stride=(1, 2),
            padding=(1, 0),
            dilation=(2, 1),
            vth=60,
            i_decay=2048,
            v_decay=10,
            gain=gain(4),
        ),
        dense(4 * 4 * 2, 10, rng, vth=12, i_decay=4096, v_decay=0, weights=(-60, 120), gain=gain(10)),
        dense(10, 5, rng, vth=7, i_decay=300, v_decay=3000, weights=(1, 255)),  # odd, excitatory weights
    ]
    return write_net(path, (2, 10, 12), specs, t)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = mixed_net(tmp_path_factory.mktemp("emu") / "mixed.net", rng, t=9)
    return path, random_spikes(rng, 4, (2, 10, 12), 9, 0.35)


@pytest.mark.lava
def test_emu_matches_sim_in_every_layer_on_random_inputs(mixed):
    path, x = mixed
    sim = simulate(path, x, backend="sim", record="all")
    got = emu.emulate(path, x, record="all")
    assert_same_records(got, sim)
    # Not a comparison of silent networks: every layer spikes, also in the last steps of its windows.
    assert all(r.counts.sum() > 0 for r in sim)
    assert all(r.counts[:, -1].sum() > 0 for r in sim[:2])


@pytest.mark.lava
def test_emu_matches_sim_when_currents_wrap_and_dense_weights_are_clipped(tmp_path):
    """Large positive fan-in without current decay overflows u's 24-bit register within a sample;
    dense weights hit NetX's and Lava's clipping and truncation (inhibitory -128 → -64, 255 → 254)."""
    rng = np.random.default_rng(2)
    inhibitory = dense(6 * 4 * 4, 5, rng, vth=30, bias=np.array([40, 25, 60, 10, 35]))
    inhibitory["weight"] = rng.choice([-128.0, -64.0], size=(5, 96)).astype(np.float32)
    clipped = dense(5, 4, rng, vth=5, weights=(-100, 254))
    clipped["weight"][0, :2] = [255, 1]
    specs = [
        conv(16, 6, (3, 3), rng, padding=(1, 1), weights=(200, 254), vth=100_000, i_decay=0, v_decay=4096),
        inhibitory,
        clipped,
    ]
    path = write_net(tmp_path / "wrap.net", (16, 4, 4), specs, 8)
    x = random_spikes(rng, 3, (16, 4, 4), 8, 0.9)
    # Without current decay u is the running sum of the input until it wraps: check it gets there.
    layer = read_net(path).layers[0]
    current = np.cumsum([_ref_synapse(layer, x[0, ..., t]) << 6 for t in range(8)], axis=0)
    assert current.max() > 1 << 23
    dense_layer = read_net(path).layers[1]
    assert np.all(dense_layer.weight >> -dense_layer.weight_exp == -64)  # what Lava's Dense model holds
    sim = simulate(path, x, backend="sim", record="all")
    assert_same_records(emu.emulate(path, x, record="all"), sim)
    assert all(r.counts.sum() > 0 for r in sim)


@pytest.mark.lava
def test_emu_matches_sim_on_a_slayer_export(tmp_path):
    path = tmp_path / "slayer.net"
    slayer_net(path, 8)
    net = read_net(path)
    assert [type(layer).__name__ for layer in net.layers] == ["ConvLayer", "ConvLayer", "DenseLayer"]
    x = random_spikes(np.random.default_rng(4), 3, (2, 12, 12), 8, 0.4)
    sim = simulate(path, x, backend="sim", record="all")
    assert_same_records(emu.emulate(net, x, record="all"), sim)
    assert all(r.counts.sum() > 0 for r in sim)


@pytest.mark.lava
def test_emu_matches_sim_on_dataset_samples(tiny_run):
    _, cfg, _ = load_checkpoint(tiny_run)
    data = FrameDataset(
        cfg.dataset, "test", cfg.input_size, cfg.timesteps, cfg.dataset_options, cache_dir=None, limit=5
    )
    path = tiny_run / "model.net"
    sim = simulate(path, data.spikes, backend="sim", record="all")
    assert_same_records(emu.emulate(path, data.spikes, record="all"), sim)
    # record="output" keeps only the last layer's spikes, with the same counts everywhere.
    out = emu.emulate(path, data.spikes, batch_size=2)
    assert [r.spikes is None for r in out] == [True] * (len(out) - 1) + [False]
    assert_same_records(out, sim)


@pytest.mark.lava
def test_emu_matches_sim_with_per_timestep_gains(tmp_path):
    rng = np.random.default_rng(5)
    path = mixed_net(tmp_path / "gain.net", rng, t=9, gains=True)
    x = random_spikes(rng, 3, (2, 10, 12), 9, 0.35)
    sim = simulate(path, x, backend="sim", record="all")
    assert_same_records(emu.emulate(path, x, record="all"), sim)
    assert all(r.counts.sum() > 0 for r in sim)


# --- an independent reference of docs/netx-format.md: Lava's timeline, one step at a time -----


def _ref_decay(x: np.ndarray, d: int) -> np.ndarray:
    p = x * (4096 - d)
    return np.sign(p) * (np.abs(p) >> 12)


def _ref_synapse(layer, s: np.ndarray) -> np.ndarray:
    """Integer synaptic input for one step's spikes ``s`` (``[C, H, W]`` or ``[n]``)."""
    if not isinstance(layer, ConvLayer):
        a = layer.weight @ s.reshape(-1).astype(np.int64)
        return a >> -layer.weight_exp
    w = layer.weight
    cout, cin_g, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    _, oh, ow = layer.shape
    xp = np.pad(s.astype(np.int64), ((0, 0), (ph, ph), (pw, pw)))
    out = np.zeros(layer.shape, dtype=np.int64)
    per_group = cout // layer.groups
    for co in range(cout):
        grp = co // per_group
        for i in range(kh):
            for j in range(kw):
                patch = xp[
                    grp * cin_g : (grp + 1) * cin_g,
                    i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                    j * dw : j * dw + sw * (ow - 1) + 1 : sw,
                ]
                out[co] += np.tensordot(w[co, :, i, j], patch, axes=(0, 0))
    return (out + (1 << 23)) % (1 << 24) - (1 << 23)


def reference_run(net: NetFile, spikes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Samples back to back, then L empty steps; synapses delay one step; layer k resets at
    window step k + 1 (its sample's local step 0) and holds the sample for the T steps from there."""
    n, t = spikes.shape[0], spikes.shape[-1]
    layers = net.layers
    steps = n * t + len(layers)
    buf = [np.zeros(layer.shape, np.int64) for layer in layers]
    u = [np.zeros(layer.shape, np.int64) for layer in layers]
    v = [np.zeros(layer.shape, np.int64) for layer in layers]
    out = [np.zeros((steps, *layer.shape), np.uint8) for layer in layers]
    for g in range(steps):
        s = spikes[g // t, ..., g % t] != 0 if g < n * t else np.zeros(spikes.shape[1:-1], bool)
        for k, layer in enumerate(layers):
            a, buf[k] = buf[k], _ref_synapse(layer, s)
            if g % t == (k + 1) % t:
                u[k][:], v[k][:] = 0, 0
            x = a << 6
            c = (slice(None),) + (None,) * (len(layer.shape) - 1)
            if layer.gain is not None:  # the sample's local step: window step g - (k + 1)
                x = np.sign(x) * ((np.abs(x) * layer.gain.mant[(g - k - 1) % t][c]) >> layer.gain.exp)
            uk = _ref_decay(u[k], layer.neuron.i_decay) + x
            uk = np.where(uk > 1 << 23, uk - (1 << 24), np.where(uk <= -(1 << 23), uk + (1 << 24), uk))
            bias = 0 if layer.bias is None else (layer.bias << 6)[c]
            vk = np.clip(_ref_decay(v[k], layer.neuron.v_decay) + uk + bias, -(1 << 23) + 1, (1 << 23) - 1)
            s = vk > layer.neuron.vth_mant << 6
            vk[s] = 0
            u[k], v[k] = uk, vk
            out[k][g] = s
    result = []
    for k, o in enumerate(out):
        o = o[k + 1 : k + 1 + n * t]  # sample i: window steps i·T + k + 1 .. i·T + T + k
        o = np.moveaxis(o.reshape(n, t, *o.shape[1:]), 1, -1)  # [N, *shape, T]
        if o.ndim == 5:
            o = o.transpose(0, 3, 2, 1, 4)  # Lava's (W, H, C)
        result.append((o.reshape(n, -1, t).sum(1), o))
    return result


def assert_matches_reference(records, ref) -> None:
    for r, (counts, spikes) in zip(records, ref):
        np.testing.assert_array_equal(r.spikes, spikes, err_msg=r.name)
        np.testing.assert_array_equal(r.counts, counts, err_msg=r.name)


def test_emu_matches_reference_of_the_gain_spec(tmp_path):
    rng = np.random.default_rng(6)
    path = mixed_net(tmp_path / "gain.net", rng, t=9, gains=True)
    net = read_net(path)
    assert sum(layer.gain is not None for layer in net.layers) == 3
    x = random_spikes(rng, 3, (2, 10, 12), 9, 0.35)
    records = emu.emulate(net, x, record="all", batch_size=2)
    assert_matches_reference(records, reference_run(net, x))
    assert all(r.counts.sum() > 0 for r in records) and all(r.counts[:, -1].sum() > 0 for r in records[:3])


def test_emu_matches_reference_without_gains(mixed):
    path, x = mixed
    net = read_net(path)
    assert_matches_reference(emu.emulate(net, x, record="all"), reference_run(net, x))


def test_unit_gain_gives_the_stock_network(tmp_path):
    rng = np.random.default_rng(7)
    stock = mixed_net(tmp_path / "stock.net", rng, t=9)
    unit = tmp_path / "unit.net"
    unit.write_bytes(stock.read_bytes())
    with h5py.File(unit, "a") as h:
        for key, exp in (("1", 11), ("3", 0), ("5", 5)):
            channels = h[f"layer/{key}/shape"][0]
            h[f"layer/{key}"].create_dataset("gain_mant", data=np.full((9, channels), 1 << exp, np.int32))
            h[f"layer/{key}"].create_dataset("gain_exp", data=exp)
    x = random_spikes(rng, 3, (2, 10, 12), 9, 0.35)
    assert sum(layer.gain is not None for layer in read_net(unit).layers) == 3
    got, expected = emu.emulate(unit, x, record="all"), emu.emulate(stock, x, record="all")
    assert_same_records(got, expected, same_gain=False)
    assert sum(r.counts.sum() for r in expected) > 0
    # A gain other than 1 changes the spikes, so the comparison above can fail.
    with h5py.File(unit, "a") as h:
        h["layer/1/gain_mant"][...] = 3 << 10  # 1.5
    assert any(not np.array_equal(a.spikes, b.spikes) for a, b in zip(emu.emulate(unit, x, record="all"), expected))


def test_emu_rejects_inputs_that_do_not_fit(mixed):
    path, x = mixed
    with pytest.raises(RuntimeConfigError, match="do not match"):
        emu.emulate(path, x[:, :, :5])
    with pytest.raises(RuntimeConfigError, match="layers need more than"):
        emu.emulate(path, x[..., :5])


def test_compare_records_finds_the_earliest_mismatch(mixed):
    path, x = mixed
    a = emu.emulate(path, x, record="all")
    b = emu.emulate(path, x, record="all")
    assert emu.compare_records(a, b) == emu.Agreement(4, 4, None)
    b[1].spikes[2, 1, 3, 0, 7] ^= 1  # a hidden layer: outputs still agree
    b[4].spikes[3, 2, 6] ^= 1
    b[4].spikes[2, 0, 8] ^= 1
    result = emu.compare_records(a, b)
    assert (result.identical, result.fraction) == (2, 0.5)
    assert result.first_mismatch == {"layer": "1:conv", "sample": 2, "timestep": 7, "neuron": (1, 3, 0)}


@pytest.mark.lava
def test_validate_cli_reports_identical_samples(tiny_run):
    proc = run_cli(
        "-m",
        "lava_runtime",
        "validate",
        "--net",
        str(tiny_run / "model.net"),
        "--dataset",
        "synthgesture",
        "--samples",
        "3",
    )
    assert "3/3 samples identical (1.000)" in proc.stdout, proc.stdout
    assert "first mismatch: none" in proc.stdout


@pytest.mark.lava
@pytest.mark.parametrize("lava, emulated", [("sim", "emu"), ("sim-float", "emu-float")])
def test_run_cli_with_the_emulator_gives_the_lava_report(tiny_run, tmp_path, lava, emulated):
    reports = {}
    for backend in (lava, emulated):
        path = tmp_path / f"{backend}.json"
        run_cli(
            *lava_run(str(tiny_run / "model.net")),
            "--samples",
            "4",
            "--backend",
            backend,
            "--report",
            str(path),
        )
        reports[backend] = json.loads(path.read_text())
    assert reports[lava]["backend"] == lava and reports[emulated]["backend"] == emulated
    for key in ("predictions", "accuracy", "layers", "totals", "samples", "timesteps"):
        assert reports[emulated][key] == reports[lava][key], key
    assert reports[lava]["totals"]["spikes"] > 0
    if lava == "sim-float":  # both float runs measure their agreement with the fixed-point model
        assert reports[emulated]["agreement"] == reports[lava]["agreement"] and 0.0 <= reports[lava]["agreement"] <= 1.0


@pytest.mark.lava
def test_validate_bins_uncached_samples_before_starting_lava(tiny_run):
    """Binning shows tqdm bars (a multiprocessing lock): Lava's runtime must be imported before that."""
    code = (
        "from lava_runtime.runner import validate_dataset; "
        f"r = validate_dataset({str(tiny_run / 'model.net')!r}, 'synthgesture', samples=2, cache_dir=None); "
        "print(r.identical, r.samples)"
    )
    proc = run_cli("-c", code)
    assert proc.stdout.split()[-2:] == ["2", "2"], proc.stdout
