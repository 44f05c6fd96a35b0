"""The authors' SMA block (sma_block: spiking): exact composition, fold into two chip layers, torch = file = emu = Lava."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from chipcheck import assert_file_equals_chip, tiny_config

from chipnet.errors import ConfigError
from chipnet.netfile import read_net
from chipnet.netwriter import write_netx
from export.nir_clients import run_norse
from export.nir_graph import to_nir, ungrouped
from export.onnx_graph import run_onnx, write_onnx
from export.weight_range import fill_weight_range
from lava_runtime.emu import emulate_local
from lava_runtime.runner import validate_arrays
from train.models import build_model
from train.models.fold import calibrate, fold_network, sma_blocks
from train.models.folded import FoldedConv
from train.models.norm import chip_norms
from train.models.sma import StaticScales
from train.models.sma_spiking import SpikingSMAConv

T = 8


def _net(model: str = "sma-azo-vgg", **options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(tiny_config(T, model=model, sma_block="spiking", **options), num_classes=3)
    net.materialize()
    return net


def _spikes(n: int = 4, seed: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 2, 16, 16, T)) < 0.3).astype(np.uint8)


def _train_a_little(net: torch.nn.Module) -> None:
    """A few steps so the batch norms hold statistics and the weights leave their init."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.from_numpy(_spikes(8, seed=5).astype(np.float32))
    net.train()
    for _ in range(3):
        opt.zero_grad()
        (net(x).mean(dim=-1) - 0.5).pow(2).mean().backward()  # towards activity, not silence
        opt.step()
    net.eval()


def _block_input(net: torch.nn.Module, block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    for b in net.blocks:
        if b is block:
            return x
        x = b(x)
    raise AssertionError("block not in net")


@pytest.mark.parametrize("pool", ["stride", "max"])
def test_composed_kernel_is_the_leading_conv_then_each_branch(pool):
    net = _net(pool=pool)
    _train_a_little(net)
    block = sma_blocks(net)[0]
    assert isinstance(block, SpikingSMAConv) and block.branch_neuron.shape[0] == 4 * block.out_channels
    with torch.no_grad():
        h = _block_input(net, block, torch.from_numpy(_spikes().astype(np.float32)))
        frames = h.permute(0, 4, 1, 2, 3).flatten(0, 1)
        kernel = block.composed_kernel()
        size = block.stride * 6 + 3  # kernels 1..7 behind a 3×3 conv of stride s
        assert kernel.shape == (4 * block.out_channels, h.shape[1], size, size)
        composed = F.conv2d(frames, kernel, None, block.stride, size // 2)
        # Branch n, channel c by hand: 'same' 3×3 conv, then the branch's 'same' conv on the un-cut output.
        lead = block.lead.weight[..., 0]
        for n, (branch, k) in enumerate(zip(block.branches, block.kernel_sizes)):
            y = F.conv2d(frames, lead, None, block.stride, 1 + block.stride * (k // 2))
            ref = F.conv2d(y, branch.weight[..., 0])
            torch.testing.assert_close(composed[:, n :: len(block.branches)], ref, atol=1e-4, rtol=1e-4)


def test_attention_reads_the_branch_spikes_and_gradients_reach_every_part():
    net = _net()
    block = sma_blocks(net)[0]
    x = torch.from_numpy(_spikes().astype(np.float32))
    net.train()
    net(x)[..., -1].sum().backward()
    for name, p in [("lead", block.lead.weight), ("temporal", block.temporal.squeeze.weight)] + [
        (f"branch {n}", b.weight) for n, b in enumerate(block.branches)
    ]:
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    net.eval()
    with torch.no_grad():
        h = _block_input(net, block, x)
        spikes = block.branch_spikes(h)
        assert set(torch.unique(spikes).tolist()) <= {0.0, 1.0} and spikes.sum() > 0
        block(h)
        w_alpha, w_beta = block._attention(spikes.sum(dim=2).mean(dim=(2, 3)).transpose(1, 2))
        torch.testing.assert_close(block.attention_scale(), w_alpha[..., None] * w_beta)


def test_fold_in_float_equals_the_block_under_a_fixed_rank_one_scale():
    net = _net()
    _train_a_little(net)
    block = sma_blocks(net)[0]
    g = torch.rand(T, block.out_channels, dtype=torch.float64) + 0.5
    r = torch.rand(4, block.out_channels, dtype=torch.float64)
    s = g[None] * r[:, None]  # rank one: the factorisation is exact
    exact, errors = fold_network(net, [s], quantized=False)
    assert errors[0] < 1e-9 and len(exact.blocks) == len(net.blocks) + 1
    branches, attention = exact.blocks[1], exact.blocks[2]
    assert isinstance(branches, FoldedConv) and not branches.per_timestep and branches.synapse.groups == 1
    assert attention.synapse.groups == block.out_channels and attention.synapse.weight.shape[1:4] == (4, 1, 1)
    x = torch.from_numpy(_spikes().astype(np.float32))
    with torch.no_grad():
        h = _block_input(net, block, x)
        expect = block.forward_scaled(h, s.float())
        got = attention(branches(h))
        assert expect.sum() > 0
        torch.testing.assert_close(got, expect)


def test_spiking_form_file_equals_torch_spike_for_spike(tmp_path):
    net = _net()
    _train_a_little(net)
    stats = calibrate(net, [torch.from_numpy(_spikes(6, seed=9).astype(np.float32))])
    chip, _ = fold_network(chip_norms(net), stats)
    chip = fill_weight_range(chip)[0]
    path = write_netx(chip, tmp_path / "m.net", {"timesteps": T, "readout": "voltage"})
    netfile = read_net(path)
    c = sma_blocks(net)[0].out_channels
    assert netfile.layers[1].weight.shape[0] == 4 * c  # the branches: one conv Cin → N·C
    assert netfile.layers[2].groups == c and netfile.layers[2].gain is not None  # grouped 1×1 N·C → C, gain
    records = assert_file_equals_chip(chip, netfile, _spikes())
    assert records[1].spikes.sum() > 0 and records[2].spikes.sum() > 0
    # ONNX (onnxruntime) runs the grouped 1×1 conv and its gain as the file says, every layer.
    write_onnx(netfile, tmp_path / "m.onnx")
    *spikes, voltage = run_onnx(tmp_path / "m.onnx", _spikes(), voltage=True)
    for rec, got in zip(records[:-1], spikes):
        ref = rec.spikes.transpose(0, 3, 2, 1, 4) if rec.spikes.ndim == 5 else rec.spikes  # emu is [B, W, H, C, T]
        np.testing.assert_array_equal(got, ref, err_msg=rec.name)
    np.testing.assert_array_equal(voltage, records[-1].voltage)


@pytest.mark.lava
def test_spiking_form_validates_on_the_lava_simulator(tmp_path):
    net = _net()
    _train_a_little(net)
    stats = calibrate(net, [torch.from_numpy(_spikes(6, seed=9).astype(np.float32))])
    chip = fill_weight_range(fold_network(chip_norms(net), stats)[0])[0]
    path = write_netx(chip, tmp_path / "m.net", {"timesteps": T, "readout": "voltage"})
    agreement = validate_arrays(path, _spikes(2))
    assert agreement.identical == 2 and agreement.first_mismatch is None


def test_spiking_form_refuses_deploy_aware_fine_tuning_and_unknown_forms():
    with pytest.raises(ConfigError, match="sma_block: linear"):
        build_model(tiny_config(T, model="sma-vgg", sma_block="spiking", folded="per-timestep"), num_classes=3)
    with pytest.raises(ConfigError, match="sma_block must be one of"):
        build_model(tiny_config(T, model="sma-vgg", sma_block="spikes"), num_classes=3)


def test_grouped_convs_reach_nir_as_dense_kernels_that_compute_the_same():
    weight = np.random.default_rng(0).integers(-9, 9, (6, 4, 1, 1))  # groups 6: [C, N, 1, 1]
    dense = ungrouped(weight, 6)
    x = torch.from_numpy(np.random.default_rng(1).random((2, 24, 5, 5)))
    grouped = F.conv2d(x, torch.from_numpy(weight).double(), groups=6)
    torch.testing.assert_close(F.conv2d(x, torch.from_numpy(dense).double()), grouped)


def test_spiking_form_static_fold_runs_identically_in_norse(tmp_path):
    torch.manual_seed(0)
    net = build_model(tiny_config(T, model="sma-vgg", sma_block="spiking", readout="spikes"), num_classes=3)
    net.materialize()
    _train_a_little(net)
    stats = calibrate(net, [torch.from_numpy(_spikes(6, seed=9).astype(np.float32))])
    chip = fill_weight_range(fold_network(chip_norms(net), stats, per_timestep=False)[0])[0]
    netfile = read_net(write_netx(chip, tmp_path / "m.net", {"timesteps": T}))
    spikes = _spikes(6)
    ref = emulate_local(netfile, spikes, "float")
    assert ref[2].sum() > 0 and ref[-1].sum() > 0
    assert (run_norse(to_nir(netfile, 1e-3), spikes) == ref[-1]).all()


@pytest.mark.parametrize("form", ["linear", "spiking"])
def test_static_attention_is_the_same_layers_with_learned_input_independent_weights(form):
    """``sma.attention: static``, the control: no SE, weights that train and do not depend on the sample."""
    torch.manual_seed(0)
    cfg = tiny_config(T, model="sma-vgg", sma={"block": form, "attention": "static"})
    net = build_model(cfg, num_classes=3)
    net.materialize()
    block = sma_blocks(net)[0]
    assert isinstance(block.temporal, StaticScales) and isinstance(block.channel, StaticScales)
    assert not any("squeeze" in name or "excite" in name for name, _ in net.named_parameters())
    before = block.channel.logits.detach().clone()
    _train_a_little(net)
    assert not torch.equal(block.channel.logits, before)  # learned
    x = torch.from_numpy(_spikes(6, seed=9).astype(np.float32))
    (stats,) = calibrate(net, [x])
    per_sample = block.attention_scale()
    assert per_sample.shape[0] == 6 and torch.allclose(per_sample, per_sample[:1].expand_as(per_sample))
    w_alpha, w_beta = (torch.softmax(m.logits.detach().double(), dim=0) for m in (block.temporal, block.channel))
    torch.testing.assert_close(stats, w_alpha[..., None] * w_beta[:, None])  # W_α[n, t] · W_β[n, c]
    with torch.no_grad():  # the calibrated mean is exactly what the block computes for every sample
        h = _block_input(net, block, x)
        torch.testing.assert_close(block.forward_scaled(h, stats.float()), block(h))
    with pytest.raises(ConfigError, match="sma.attention must be one of"):
        build_model(tiny_config(T, model="sma-vgg", sma={"attention": "none"}), num_classes=3)
