"""``--backend sim-float``: Lava's floating-point models on the network in float units, against
the emulator's float arithmetic, step for step; and how it differs from the fixed-point run."""

from __future__ import annotations

import numpy as np
import pytest
from netfactory import LayerSpec, write_net

from chipnet.errors import RuntimeConfigError
from lava_runtime.emu import emulate
from lava_runtime.float_units import dense_float_weights
from lava_runtime.simulate import simulate

T = 6


def _net_and_input(tmp_path, gains: bool):
    """conv 2→3 and dense 108→5 with decays, a threshold well above one input, optional gains.

    Seed 1 has spikes that the fixed point's truncations move (found by searching seeds with
    the emulator): the float and the fixed-point runs are not the same network run twice.
    """
    rng = np.random.default_rng(1)
    layers = [
        LayerSpec(
            rng.integers(-40, 90, (3, 2, 3, 3)),
            padding=1,
            vth=400,
            i_decay=700,
            v_decay=300,
            gain_mant=rng.integers(0, 4096, (T, 3)) if gains else None,
            gain_exp=11,
        ),
        LayerSpec(
            rng.integers(-60, 100, (5, 108)),
            vth=400,
            i_decay=700,
            v_decay=300,
            gain_mant=rng.integers(0, 4096, (T, 5)) if gains else None,
            gain_exp=11,
        ),
    ]
    x = (rng.random((12, 2, 6, 6, T)) < 0.3).astype(np.uint8)
    return write_net(tmp_path / "net.net", (2, 6, 6), layers, T), x


@pytest.mark.lava
@pytest.mark.parametrize("gains", [False, True], ids=["plain", "gains"])
def test_sim_float_matches_the_float_emulator_step_for_step(tmp_path, gains):
    net, x = _net_and_input(tmp_path, gains)
    lava = simulate(net, x, backend="sim-float", record="all")
    float_emu = emulate(net, x, record="all", arithmetic="float")
    fixed_emu = emulate(net, x, record="all")
    for rec, ref in zip(lava, float_emu):
        np.testing.assert_array_equal(rec.spikes, ref.spikes, err_msg=rec.name)
        np.testing.assert_array_equal(rec.counts, ref.counts, err_msg=rec.name)
        assert rec.spikes.sum() > 0 and rec.gain == gains
    # The float run is not the fixed-point one: the truncations move a few spikes...
    moved = sum(int((a.spikes != b.spikes).sum()) for a, b in zip(float_emu, fixed_emu))
    assert 0 < moved < 0.01 * sum(int(r.spikes.sum()) for r in fixed_emu)


def test_dense_float_weights_are_the_fixed_models_weights_times_the_exponent():
    positive = np.array([[100, 3, 0], [7, 127, 255]])  # excitatory: all 8 bits are magnitude
    np.testing.assert_array_equal(dense_float_weights(positive, {"weight_exp": -2, "num_weight_bits": 8}), positive / 4)
    w = np.array([[100, -3, 0], [7, 127, -128]])
    # Fewer weight bits drop low bits as PyDenseModelBitAcc does: mixed signs lose 8 - 6 + 1 = 3 bits,
    # by an arithmetic shift (floor: -3 → -8).
    np.testing.assert_array_equal(
        dense_float_weights(w, {"weight_exp": 0, "num_weight_bits": 6}), np.array([[96, -8, 0], [0, 120, -128]])
    )


def test_emulator_refuses_unknown_arithmetic(tmp_path):
    net, x = _net_and_input(tmp_path, gains=False)
    with pytest.raises(RuntimeConfigError, match="unknown arithmetic 'double'"):
        emulate(net, x, arithmetic="double")
