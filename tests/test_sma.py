"""SMA block (eq. 5–12) and the SMA-VGG family: shapes, softmaxes, N=1, fixed scaling, gradients."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from lava.lib.dl import slayer

from chipnet.errors import ConfigError
from train.config import TrainConfig
from train.models import build_model
from train.models.attention import default_attention_layers
from train.models.sma import SMAConv
from train.models.vgg import VGG

NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3.0}
T = 6


def spikes(b: int = 3, c: int = 3, size: int = 9, t: int = T, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, c, size, size, t, generator=g) < p).float()


@pytest.mark.parametrize("kernels", [(1,), (1, 3), (1, 3, 5), (1, 3, 5, 7), (1, 3, 5, 7, 9)])
@pytest.mark.parametrize("stride", [1, 2])
def test_shapes_and_softmaxes_for_every_n(kernels, stride):
    torch.manual_seed(0)
    block = SMAConv(NEURON, 3, 5, T, kernels, stride=stride)
    x = spikes()
    out = block(x)
    size = 9 if stride == 1 else 5
    n = len(kernels)
    assert out.shape == (3, 5, size, size, T)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert block.branch_currents(x).shape == (3, n, 5, size, size, T)
    att = block.last_attention
    assert att["temporal"].shape == (3, n, T) and att["channel"].shape == (3, n, T, 5)
    torch.testing.assert_close(att["temporal"].sum(1), torch.ones(3, T))
    torch.testing.assert_close(att["channel"].sum(1), torch.ones(3, T, 5))
    assert (att["temporal"] > 0).all() and (att["channel"] > 0).all()
    assert [b.kernel_size[:2] for b in block.branches] == [(k, k) for k in kernels]
    assert all(
        b.padding[:2] == (k // 2, k // 2) and b.stride[:2] == (stride, stride) and b.bias is None
        for b, k in zip(block.branches, kernels)
    )


def test_current_is_eq12_sum_of_branches_times_both_attentions():
    torch.manual_seed(1)
    block = SMAConv(NEURON, 3, 4, T)
    x = spikes(seed=1)
    z = block.current(x)
    a, b = block.last_attention["temporal"], block.last_attention["channel"]
    expected = sum(
        branch(x) * (a[:, n, None, :] * b[:, n].transpose(1, 2))[:, :, None, None, :]
        for n, branch in enumerate(block.branches)
    )
    torch.testing.assert_close(z, expected)


def test_n1_reduces_to_a_plain_conv_synapse_scaled_by_one():
    torch.manual_seed(2)
    block = SMAConv(NEURON, 3, 4, T, kernel_sizes=(3,), stride=2)
    plain = slayer.block.cuba.Conv({**NEURON, "requires_grad": False}, 3, 4, 3, stride=2, padding=1, delay_shift=False)
    with torch.no_grad():
        plain.synapse.weight.copy_(block.branches[0].weight)
    x = spikes(seed=2, p=0.5)
    torch.testing.assert_close(block.current(x), plain.synapse(x), rtol=0, atol=0)
    assert torch.equal(block.last_attention["temporal"], torch.ones(3, 1, T))
    assert torch.equal(block(x), plain(x))
    assert block(x).sum() > 0  # not two silent blocks


def test_fixed_scale_replaces_attention():
    torch.manual_seed(3)
    block = SMAConv(NEURON, 3, 4, T, kernel_sizes=(1, 3, 5, 7))
    x = spikes(seed=3)
    block(x)
    att = dict(block.last_attention)
    per_sample = att["temporal"][..., None] * att["channel"]
    # The block's own attention passed in as a fixed scale gives back the same spikes and currents.
    torch.testing.assert_close(block.current(x, per_sample), block.current(x))
    assert torch.equal(block.forward_scaled(x, per_sample), block(x))
    # A shared [N, T, C] scale weighs branch n by s[n, t, c] only.
    s = torch.rand(4, T, 4)
    m = block.branch_currents(x)
    torch.testing.assert_close(block.current(x, s), (m * s.permute(0, 2, 1)[None, :, :, None, None, :]).sum(1))
    assert torch.equal(block.last_attention["temporal"], att["temporal"])  # untouched by scaled runs
    with pytest.raises(ValueError, match=r"scale must be \[N, T, C\]"):
        block.current(x, torch.ones(3, T, 4))


def test_wrong_timesteps_are_a_clear_error():
    block = SMAConv(NEURON, 3, 4, T)
    with pytest.raises(ValueError, match="built for T=6"):
        block(spikes(t=4))
    with pytest.raises(ValueError, match="odd"):
        SMAConv(NEURON, 3, 4, T, kernel_sizes=(1, 2))


def test_gradients_reach_every_sma_parameter():
    torch.manual_seed(4)
    block = SMAConv(NEURON, 3, 4, T)
    x = spikes(seed=4, p=0.5)
    block(x).sum().backward()
    trainable = {name: p for name, p in block.named_parameters() if p.requires_grad}
    assert {n.split(".")[0] for n in trainable} == {"branches", "temporal", "channel"}
    for name, p in trainable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _cfg(model: str, **kw) -> TrainConfig:
    return TrainConfig(**{"model": model, "input_size": 16, "timesteps": T, "channels": [4, 6, 8], "hidden": 16, **kw})


def test_models_place_sma_in_the_first_half_but_not_the_encoder():
    assert (
        default_attention_layers(2) == [1]
        and default_attention_layers(3) == [1]
        and default_attention_layers(5) == [1, 2]
    )
    torch.manual_seed(5)
    x = spikes(b=2, c=2, size=16)
    for model in ("sma-vgg", "sma-azo-vgg"):
        net = build_model(_cfg(model), 11)
        kinds = [type(b).__name__ for b in net.blocks]
        assert kinds == ["Conv", "SMAConv", "Conv", "Flatten", "Dense", "Dense"]
        assert (net.sma_blocks[0].azo is not None) == (model == "sma-azo-vgg")
        outs = net.forward_all(x)
        assert [tuple(o.shape) for o in outs] == [
            (2, 4, 8, 8, T),
            (2, 6, 4, 4, T),
            (2, 8, 2, 2, T),
            (2, 32, T),
            (2, 16, T),
            (2, 11, T),
        ]
        assert torch.equal(net(x), outs[-1])
    net = build_model(_cfg("sma-vgg", sma_layers=[1, 2], hidden=[16, 12]), 11)
    assert [type(b).__name__ for b in net.blocks] == [
        "Conv",
        "SMAConv",
        "SMAConv",
        "Flatten",
        "Dense",
        "Dense",
        "Dense",
    ]
    with pytest.raises(ConfigError, match="not conv layers"):
        build_model(_cfg("sma-vgg", sma_layers=[3]), 11)
    with pytest.raises(ConfigError, match="unknown model"):
        build_model(_cfg("resnet"), 11)


def test_vgg_is_unchanged_by_the_sma_refactor():
    # The plain VGG is the foundation's network: the same blocks built in the same order from the
    # same RNG state give identical weights and identical spikes.
    torch.manual_seed(6)
    net = build_model(_cfg("vgg"), 11)
    torch.manual_seed(6)
    params = {**NEURON, "requires_grad": False}
    ref = [
        slayer.block.cuba.Conv(params, cin, cout, 3, stride=2, padding=1, weight_scale=2, delay_shift=False)
        for cin, cout in ((2, 4), (4, 6), (6, 8))
    ]
    ref += [
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(params, 32, 16, weight_scale=2, delay_shift=False),
        slayer.block.cuba.Dense(params, 16, 11, weight_scale=2, delay_shift=False),
    ]
    ref = torch.nn.Sequential(*ref)
    assert type(net) is VGG
    assert [k for k in net.state_dict()] == ["blocks." + k for k in ref.state_dict()]
    for (name, p), q in zip(net.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(p, q), name
    x = spikes(b=2, c=2, size=16, p=0.4)
    with torch.no_grad():
        outs, y = net.forward_all(x), x
        for out, block in zip(outs, ref):
            y = block(y)
            assert torch.equal(out, y)
    assert outs[0].sum() > 0 and outs[1].sum() > 0  # compared while spiking


@pytest.mark.parametrize(
    "kernels,stride,size", [((1, 3, 5, 7), 2, 9), ((1, 3, 5, 7), 1, 8), ((3, 5), 2, 10), ((1,), 2, 7)]
)
def test_attention_pooled_from_the_input_equals_pooling_the_branch_currents(kernels, stride, size):
    # The block pools Y = mean_n M_n from the input and the kernels (no gradient through M); the
    # paper's definition pools M itself: same attention either way.
    torch.manual_seed(8)
    block = SMAConv(NEURON, 3, 5, T, kernels, stride=stride)
    x = (torch.rand(3, 3, size, size + 3, T) < 0.5).float()  # not square: rows and columns apart
    block.current(x)
    w_alpha, w_beta = block.attention(block.branch_currents(x))
    torch.testing.assert_close(block.last_attention["temporal"], w_alpha)
    torch.testing.assert_close(block.last_attention["channel"], w_beta)


def test_training_steps_in_one_thread_keep_the_heap_intact():
    # torch 2.3's channels-last strided 1×1 conv backward corrupts the heap with 4 input channels in
    # one thread ("double free or corruption"): the block must not feed its convolutions that layout.
    code = (
        "import torch\n"
        "from train.models.sma import SMAConv\n"
        "from train.models.azo import AttentionZoneout\n"
        f"block = SMAConv({NEURON!r}, 4, 6, 8, stride=2, azo=AttentionZoneout(2, 1)).train()\n"
        "for _ in range(60):\n"
        "    x = (torch.rand(4, 4, 8, 8, 8) < 0.3).float().requires_grad_()\n"
        "    block(x).sum().backward()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
