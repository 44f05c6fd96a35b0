"""Every input frame reaches the decision: the last frames of a sample count on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lava.lib.dl import slayer

from chipnet.decision import accuracy
from chipnet.netwriter import write_netx
from lava_runtime import emu
from lava_runtime.simulate import simulate
from train.models.vgg import VGG

T = 8
NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3.0}


def _late_events(n: int, late: int, rng: np.random.Generator) -> np.ndarray:
    """Samples ``[N, 2, 8, 8, T]`` whose events all fall in the last ``late`` frames."""
    x = np.zeros((n, 2, 8, 8, T), np.uint8)
    x[..., T - late :] = rng.random((n, 2, 8, 8, late)) < 0.5
    return x


def _excitatory_vgg() -> VGG:
    """conv → flatten → dense → dense with positive weights: input reaches the output within a step."""
    torch.manual_seed(0)
    net = VGG(2, 8, 3, channels=[4], hidden=8, neuron=NEURON)
    net.materialize()
    with torch.no_grad():
        for block in net.blocks:
            if hasattr(block, "synapse"):
                block.synapse.weight.abs_().mul_(3)
    return net.eval()


@pytest.mark.lava
def test_events_in_the_last_frames_reach_the_output_on_every_backend(tmp_path):
    net = _excitatory_vgg()
    layers = 3  # conv, dense, dense: each one step behind the previous one on the chip
    x = _late_events(3, layers, np.random.default_rng(0))
    path = write_netx(net, tmp_path / "late.net", {"timesteps": T, "input_shape": [2, 8, 8]})
    with torch.no_grad():
        torch_out = net(torch.from_numpy(x.astype(np.float32))).numpy()
    emu_out = emu.emulate(path, x)[-1].spikes
    sim_out = simulate(path, x, backend="sim")[-1].spikes
    np.testing.assert_array_equal(emu_out, torch_out)
    np.testing.assert_array_equal(sim_out, torch_out)
    # Every sample decides on its own late frames (before, the window ended L steps too early).
    assert (torch_out.reshape(3, -1).sum(1) > 0).all()
    # The same blocks with SLAYER's delay_shift see nothing of these frames: the old timing.
    delayed = [b for b in net.blocks]
    for b in delayed:
        b.delay_shift = True
    with torch.no_grad():
        old = net(torch.from_numpy(x.astype(np.float32)))
    assert old.sum() == 0


def test_a_class_visible_only_in_the_last_frames_is_learned():
    """Two classes (ON vs OFF events) that differ only in the last 3 frames; the frames before hold
    the same pattern in every sample (seen, but no evidence)."""
    rng = np.random.default_rng(1)
    n, late = 96, 3
    y = rng.integers(0, 2, n)
    x = np.zeros((n, 2, 8, 8, T), np.uint8)
    x[..., : T - late] = rng.random((2, 8, 8, T - late)) < 0.1
    for i in range(n):
        x[i, y[i], ..., T - late :] = rng.random((8, 8, late)) < 0.5
    torch.manual_seed(1)
    net = VGG(2, 8, 2, channels=[4], hidden=16, neuron={**NEURON, "requires_grad": False})
    net.materialize()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    loss_fn = slayer.loss.SpikeRate(true_rate=0.3, false_rate=0.02, reduction="mean")
    xs, ys = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    for _ in range(15):
        for start in range(0, 72, 12):
            loss = loss_fn(net(xs[start : start + 12]), ys[start : start + 12])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = accuracy(net(xs[72:]), y[72:])
    assert acc >= 0.9, acc
