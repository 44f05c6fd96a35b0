"""Counts of a run: fan-outs, synops and spikes equal what the recorded spikes say."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from lava.proc.conv.utils import conv_to_sparse, output_shape
from netfactory import LayerSpec, synapse, write_net

from lava_runtime.counting import conv_fanout, dense_fanout, synops_from_spikes
from lava_runtime.energy import load_energy_model
from lava_runtime.report import build_report
from lava_runtime.simulate import simulate
from train.data import FrameDataset

T = 5


@pytest.mark.parametrize("stride, padding, groups", [(1, 1, 1), (2, 1, 1), (2, 0, 2), (1, 2, 1)])
def test_conv_fanout_equals_lavas_own_sparse_connectivity(stride, padding, groups):
    rng = np.random.default_rng(stride * 10 + padding + groups)
    weight = rng.integers(-3, 4, (4, 3, 3, 4 // groups))  # Lava layout [Cout, kx, ky, Cin/groups], zeros included
    in_shape = (7, 6, 4)
    pair = np.array([stride, stride]), np.array([padding, padding]), np.array([1, 1])
    fan = conv_fanout(weight, in_shape, *pair, groups)
    out_shape = output_shape(in_shape, 4, (3, 3), *pair)
    dst, src, w = conv_to_sparse(in_shape, out_shape, weight, *pair, groups)
    expected = np.bincount(src[w != 0], minlength=int(np.prod(in_shape))).reshape(in_shape)
    np.testing.assert_array_equal(fan, expected)


def test_dense_fanout_follows_netx_flatten_order():
    weights = np.zeros((3, 2 * 3 * 4), dtype=int)
    weights[:, 5] = [1, 0, 2]  # input 5 in (C, H, W) order: c=0, h=1, w=1
    weights[2, 23] = -1  # c=1, h=2, w=3
    fan = dense_fanout(weights, (4, 3, 2))  # presynaptic layer (W, H, C)
    assert fan.shape == (4, 3, 2) and fan.sum() == 3
    assert fan[1, 1, 0] == 2 and fan[3, 2, 1] == 1


def _net(tmp_path, rng):
    layers = [
        LayerSpec(rng.integers(-40, 90, (3, 2, 3, 3)), stride=2, padding=1, vth=40),
        LayerSpec(rng.integers(-60, 100, (6, 27)) * (rng.random((6, 27)) < 0.7), vth=40),
        LayerSpec(rng.integers(-60, 100, (4, 6)), vth=20),
    ]
    return write_net(tmp_path / "net.net", (2, 6, 6), layers, T), layers


@pytest.mark.lava
def test_counters_equal_counts_recomputed_from_recorded_spikes(tmp_path):
    rng = np.random.default_rng(5)
    net, layers = _net(tmp_path, rng)
    x = (rng.random((4, 2, 6, 6, T)) < 0.35).astype(np.uint8)
    counted = simulate(net, x, record="output")
    recorded = simulate(net, x, record="all")
    # Fan-outs from the numpy reference's synapses: an impulse on input j reaches fan-out[j] neurons.
    prev_shape = (2, 6, 6)
    for k, (c, r, spec) in enumerate(zip(counted, recorded, layers)):
        size = int(np.prod(prev_shape))
        fan = np.array(
            [np.count_nonzero(synapse(spec, np.eye(size, dtype=np.int64)[j].reshape(prev_shape))) for j in range(size)]
        ).reshape(prev_shape)
        fan = fan.transpose(2, 1, 0) if len(prev_shape) == 3 else fan  # (C, H, W) -> Lava's (W, H, C)
        pre = x.transpose(0, 3, 2, 1, 4) if k == 0 else recorded[k - 1].spikes
        np.testing.assert_array_equal(c.synops, synops_from_spikes(pre, fan), err_msg=c.name)
        np.testing.assert_array_equal(r.synops, c.synops, err_msg=r.name)
        np.testing.assert_array_equal(c.counts, r.spikes.reshape(len(x), -1, T).sum(1), err_msg=c.name)
        assert c.topology.synapses == int(fan.sum())
        prev_shape = spec.shape
    assert all(c.counts.sum() > 0 and c.synops.sum() > 0 for c in counted)
    # The last steps of each window are counted too (they used to be dropped as the next sample's tail).
    assert all(c.counts[:, -1].sum() > 0 for c in counted[:2])
    report = build_report(counted, np.zeros(len(x), int), {"backend": "sim"}, 1.0, energy=load_energy_model())
    for row, c in zip(report["layers"], counted):
        assert row["spikes"] == int(c.counts.sum()) and row["synops"] == int(c.synops.sum())
        assert row["neuron_updates"] == int(np.prod(c.shape)) * len(x) * T
    assert report["totals"]["synops"] == sum(int(c.synops.sum()) for c in counted)


@pytest.mark.lava
def test_run_cli_report_counts_energy_and_compare(tiny_run, tmp_path):
    a, b = tmp_path / "a" / "report.json", tmp_path / "b" / "report.json"
    a.parent.mkdir()
    b.parent.mkdir()
    net = str(tiny_run / "model.net")
    run_cli(
        "-m", "lava_runtime", "run", "--net", net, "--dataset", "synthgesture", "--samples", "3", "--report", str(a)
    )
    report = json.loads(a.read_text())
    # The same samples recorded spike by spike give the same counts.
    meta = report["timesteps"]
    data = FrameDataset("synthgesture", "test", 16, meta, {"samples_per_class": 3, "seed": 7}, cache_dir=None, limit=3)
    recorded = simulate(tiny_run / "model.net", data.spikes, record="all")
    model = load_energy_model()
    for row, rec, prev in zip(report["layers"], recorded, [None, *recorded[:-1]]):
        assert row["spikes"] == int(rec.spikes.sum())
        pre = data.spikes.transpose(0, 3, 2, 1, 4) if prev is None else prev.spikes
        assert row["synops"] == int(synops_from_spikes(pre, rec.topology.fanout).sum())
        energy = (
            row["synops"] * model["synop_j"]
            + row["neuron_updates"] * model["neuron_update_j"]
            + row["spikes"] * model["spike_j"]
        )
        assert row["energy_j"] == pytest.approx(energy, rel=1e-12)
    assert report["agreement"] == 1.0  # Lava's fixed point equals the emulator's on every sample
    totals = report["totals"]
    assert totals["energy_per_inference_j"] == pytest.approx(totals["energy_j"] / 3)
    assert report["ann_comparison"]["macs"] == sum(r["synapses"] for r in report["layers"])
    assert report["ann_comparison"]["snn_acs"] == pytest.approx(totals["synops"] / 3)
    assert report["neurobench"]["effective_acs_per_sample"] == pytest.approx(totals["synops"] / 3)
    assert report["energy_model"]["constants"]["synop_j"]["source"].startswith("Davies et al.")
    assert 0 < report["neurobench"]["activation_sparsity"] < 1
    assert report["output_raster"]["sample"] == 0
    for name in ("report.md", "report_spikes.png", "report_raster.png", "report_energy.png"):
        assert (a.parent / name).stat().st_size > 500, name
    assert "| 0:conv |" in (a.parent / "report.md").read_text()
    # compare prints both side by side.
    b.write_text(a.read_text().replace('"backend": "sim"', '"backend": "other"'))
    proc = run_cli("-m", "lava_runtime", "compare", str(a), str(b))
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("backend"))
    assert line.split()[1:] == ["sim", "other"]
    assert f"{totals['spikes']:,}" in next(ln for ln in proc.stdout.splitlines() if ln.startswith("spikes"))
