"""Max pooling as NetX runs it (train/models/pool.py): a depthwise conv into OR neurons, torch = file = emu = Lava."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from chipcheck import assert_file_equals_chip, tiny_config

from chipnet.netfile import read_net
from chipnet.netwriter import write_netx
from export.weight_range import fill_weight_range
from lava_runtime.runner import validate_arrays
from train.models import build_model
from train.models.fold import calibrate, fold_network, sma_blocks
from train.models.norm import chip_norms
from train.models.pool import SpikeMaxPool

T = 8


def _net(model: str) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(tiny_config(T, model=model, pool="max", norm="none"), num_classes=3)
    net.materialize()
    return net.eval()


def _spikes(n: int = 3) -> np.ndarray:
    return (np.random.default_rng(2).random((n, 2, 16, 16, T)) < 0.3).astype(np.uint8)


def test_pool_block_is_the_max_pool_of_its_input_spikes_and_passes_gradients():
    net = _net("vgg")
    pools = [b for b in net.blocks if isinstance(b, SpikeMaxPool)]
    assert len(pools) == 2 and not any(p.requires_grad for b in pools for p in b.parameters())
    x = torch.from_numpy(_spikes().astype(np.float32))
    outs = net.forward_all(x)
    conv, pooled = outs[0], outs[1]
    assert conv.shape[2:4] == (16, 16) and pooled.shape[2:4] == (8, 8) and conv.sum() > 0
    frames = conv.permute(0, 4, 1, 2, 3).flatten(0, 1)  # [B·T, C, H, W]
    expect = F.max_pool2d(frames, 2).unflatten(0, (conv.shape[0], T)).permute(0, 2, 3, 4, 1)
    torch.testing.assert_close(pooled, expect)
    net.train()
    out = net(x.requires_grad_(True))
    out[..., -1].sum().backward()
    assert float(net.blocks[0].synapse.weight.grad.abs().sum()) > 0  # the error reaches the conv under the pool


@pytest.mark.parametrize("model", ["vgg", "sma-vgg"])
def test_pooled_network_file_equals_torch_spike_for_spike(model, tmp_path):
    net = _net(model)
    chip = chip_norms(net)
    if sma_blocks(net):
        chip, _ = fold_network(chip, calibrate(net, [torch.from_numpy(_spikes(4).astype(np.float32))]))
    chip = fill_weight_range(chip)[0]
    path = write_netx(chip, tmp_path / "m.net", {"timesteps": T, "readout": "voltage"})
    netfile = read_net(path)
    assert [type(layer).__name__ for layer in netfile.layers][:4] == ["ConvLayer"] * 4
    assert netfile.layers[1].groups == 4
    records = assert_file_equals_chip(chip, netfile, _spikes())
    assert records[1].spikes.sum() > 0


@pytest.mark.lava
def test_pooled_network_validates_on_the_lava_simulator(tmp_path):
    chip = fill_weight_range(chip_norms(_net("vgg")))[0]
    path = write_netx(chip, tmp_path / "m.net", {"timesteps": T, "readout": "voltage"})
    agreement = validate_arrays(path, _spikes(2))
    assert agreement.identical == 2 and agreement.first_mismatch is None
