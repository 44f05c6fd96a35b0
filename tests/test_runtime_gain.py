"""The gain neuron on the Lava simulator against an independent numpy reference of the spec."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from netfactory import LayerSpec, reference, to_lava_order, write_net

from chipnet.errors import RuntimeConfigError
from lava_runtime.processes.gain_lif import GainLIFReset
from lava_runtime.simulate import simulate

T = 6


def _layers(rng: np.random.Generator, gains: bool) -> list[LayerSpec]:
    """conv 2→3 (3×3, padding 1) on 6×6, flatten, dense 108→5; gains on both when asked."""
    conv_gain = rng.integers(0, 4096, (T, 3)) if gains else None
    dense_gain = rng.integers(0, 4096, (T, 5)) if gains else None
    return [
        LayerSpec(rng.integers(-40, 90, (3, 2, 3, 3)), padding=1, vth=60, gain_mant=conv_gain, gain_exp=11),
        LayerSpec(rng.integers(-60, 100, (5, 108)), vth=50, gain_mant=dense_gain, gain_exp=11),
    ]


@pytest.mark.lava
@pytest.mark.parametrize("gains", [False, True], ids=["plain", "gains"])
def test_lava_sim_matches_numpy_reference_step_for_step(tmp_path, gains):
    rng = np.random.default_rng(1)
    layers = _layers(rng, gains)
    net = write_net(tmp_path / "net.net", (2, 6, 6), layers, T)
    x = (rng.random((3, 2, 6, 6, T)) < 0.3).astype(np.uint8)
    records = simulate(net, x, record="all")
    expected = reference(layers, x)
    assert [r.gain for r in records] == [gains, gains]
    for rec, ref in zip(records, expected):
        np.testing.assert_array_equal(rec.spikes, to_lava_order(ref), err_msg=rec.name)
        assert rec.spikes.sum() > 0, rec.name  # not two silent networks
    if gains:  # the gains change the outcome, so matching the reference tests them
        plain = reference([dataclasses.replace(s, gain_mant=None) for s in layers], x)
        assert any((p != e).any() for p, e in zip(plain, expected))


@pytest.mark.lava
def test_unit_gain_is_bit_identical_to_stock_lif(tmp_path):
    rng = np.random.default_rng(2)
    plain = _layers(rng, gains=False)
    unit = [dataclasses.replace(s, gain_mant=np.full((T, s.weight.shape[0]), 1 << 11), gain_exp=11) for s in plain]
    x = (rng.random((2, 2, 6, 6, T)) < 0.4).astype(np.uint8)
    a = simulate(write_net(tmp_path / "plain.net", (2, 6, 6), plain, T), x, record="all")
    b = simulate(write_net(tmp_path / "unit.net", (2, 6, 6), unit, T), x, record="all")
    for ra, rb in zip(a, b):
        assert not ra.gain and rb.gain
        np.testing.assert_array_equal(ra.spikes, rb.spikes, err_msg=ra.name)
    assert a[0].spikes.sum() > 0


def test_gain_table_with_other_timesteps_is_refused(tmp_path):
    rng = np.random.default_rng(3)
    layers = _layers(rng, gains=True)
    layers[1].gain_mant = rng.integers(0, 4096, (T + 1, 5))
    net = write_net(tmp_path / "net.net", (2, 6, 6), layers, T)
    with pytest.raises(RuntimeConfigError, match=r"layer 1 has a gain table of 7 timesteps, the run has 6"):
        simulate(net, np.zeros((1, 2, 6, 6, T), np.uint8))


@pytest.mark.parametrize(
    "mant, exp, match",
    [
        (np.ones((T, 4), np.int32), 0, r"gain_mant must be \[T, 3\]"),
        (np.full((T, 3), 4096), 0, r"integers in \[0, 4095\]"),
        (np.full((T, 3), -1), 0, r"integers in \[0, 4095\]"),
        (np.full((T, 3), 0.5), 0, r"integers in \[0, 4095\]"),
        (np.ones((T, 3), np.int32), 16, r"gain_exp must be an integer in \[0, 15\]"),
    ],
)
def test_gain_process_refuses_bad_gains(mant, exp, match):
    with pytest.raises(ValueError, match=match):
        GainLIFReset(shape=(4, 4, 3), gain_mant=mant, gain_exp=exp, vth=10, reset_interval=T, reset_offset=1)


def _float_run(neuron, weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Spikes of ``neuron`` fed through a float Dense synapse from a RingBuffer, floating-point models."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    src, syn, sink = Source(data=x), Dense(weights=weights), Sink(shape=neuron.s_out.shape, buffer=x.shape[-1])
    src.s_out.connect(syn.s_in)
    syn.a_out.connect(neuron.a_in)
    neuron.s_out.connect(sink.a_in)
    try:
        src.run(condition=RunSteps(num_steps=x.shape[-1]), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        return sink.data.get()
    finally:
        src.stop()


@pytest.mark.lava
def test_float_model_scales_input_per_channel():
    rng = np.random.default_rng(6)
    x = (rng.random((4, 3 * T)) < 0.5).astype(float)
    weights = rng.normal(0.6, 0.5, (3, 4))
    scale = np.array([0.25, 1.0, 2.0])  # gain_mant / 2**10, the same at every step
    params = dict(shape=(3,), du=0.3, dv=0.2, vth=1.0, reset_interval=T, reset_offset=2)
    gained = _float_run(
        GainLIFReset(gain_mant=np.tile(scale * 1024, (T, 1)).astype(int), gain_exp=10, **params), weights, x
    )
    from lava.proc.lif.process import LIFReset

    stock = _float_run(LIFReset(**params), weights * scale[:, None], x)
    np.testing.assert_array_equal(gained, stock)
    assert gained.sum() > 0 and (gained[0] != gained[2]).any()
