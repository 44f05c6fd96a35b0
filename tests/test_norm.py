"""Normalisation and dropout that deploy (train/models/norm.py): trained → chip form → file → emulator."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from lava.lib.dl import slayer

from chipnet.errors import ConfigError
from chipnet.netfile import read_net
from chipnet.netwriter import write_netx
from export.weight_range import fill_weight_range
from lava_runtime import emu
from train.config import TrainConfig
from train.models import build_model
from train.models.fold import calibrate, fold_network, sma_blocks
from train.models.norm import NeuronBias, chip_bias, chip_norms, norm_factory
from train.models.sma import SMAConv

T = 6


def _trained(model: str, norm: str, dropout: float = 0.5, seed: int = 0) -> torch.nn.Module:
    """A tiny network whose norms have running statistics from a few training-mode batches."""
    torch.manual_seed(seed)
    cfg = TrainConfig(model=model, input_size=16, timesteps=T, channels=[4, 6], hidden=8, norm=norm, dropout=dropout)
    net = build_model(cfg, num_classes=3)
    net.train()
    with torch.no_grad():
        for _ in range(3):  # momentum 0.1: the running means move off zero
            net((torch.rand(4, 2, 16, 16, T) < 0.4).float())
    if norm == "weight-scale":  # a few batches leave 2**e = 1; a trained net's variances give e ≠ 0 both ways
        for block, var in zip(net.blocks[:2], (0.02, 5.0)):
            block.neuron.norm.running_var.fill_(var)
    return net.eval()


def _chip_form(net: torch.nn.Module) -> torch.nn.Module:
    """What export_run deploys: norms in chip form, SMA folded, weight range filled."""
    chip = chip_norms(net)
    if sma_blocks(net):
        stats = calibrate(net, [(torch.rand(4, 2, 16, 16, T) < 0.4).float()])
        chip, _ = fold_network(chip, stats)
    return fill_weight_range(chip)[0]


def test_unknown_norm_and_bad_dropout_are_config_errors():
    with pytest.raises(ValueError, match="norm must be one of"):
        norm_factory("group", 4)
    with pytest.raises(ConfigError, match="norm must be one of"):
        build_model(TrainConfig(norm="group"), num_classes=3)
    with pytest.raises(ConfigError, match="dropout"):
        TrainConfig.from_dict({"dropout": 1.0})


def test_norm_sits_on_every_conv_and_dropout_on_hidden_dense_layers_only():
    net = _trained("sma-vgg", "weight-scale")
    convs = [b for b in net.blocks if isinstance(b, (slayer.block.cuba.Conv, SMAConv))]
    dense = [b for b in net.blocks if isinstance(b, slayer.block.cuba.Dense)]
    assert len(convs) == 2 and all(isinstance(b.neuron.norm, slayer.neuron.norm.WgtScaleBatchNorm) for b in convs)
    assert all(b.neuron.norm.running_mean.shape == (b.neuron.shape[0],) for b in convs)
    assert all(b.neuron.norm is None for b in dense)
    assert isinstance(dense[0].neuron.drop, slayer.neuron.Dropout) and dense[-1].neuron.drop is None
    # Dropout acts in training only: eval is deterministic.
    x = (torch.rand(2, 2, 16, 16, T) < 0.4).float()
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x))


def test_checkpoints_of_normalised_models_load_into_a_fresh_model():
    net = _trained("vgg", "mean-only")
    fresh = build_model(
        TrainConfig(model="vgg", input_size=16, timesteps=T, channels=[4, 6], hidden=8, norm="mean-only"), 3
    )
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh.blocks[0].neuron.norm.running_mean, net.blocks[0].neuron.norm.running_mean)


@pytest.mark.parametrize("norm", ["mean-only", "weight-scale"])
@pytest.mark.parametrize("model", ["vgg", "sma-vgg"])
def test_chip_form_equals_the_trained_norm_and_the_file_spike_for_spike(model, norm, tmp_path):
    """The chip form (bias, threshold·2**e, range filled) spikes as the trained model, and as its file."""
    net = _trained(model, norm)
    deployed = chip_norms(net)
    x = (torch.rand(3, 2, 16, 16, T) < 0.4).float()
    with torch.no_grad():
        trained_out, deployed_out = net.forward_all(x), deployed.forward_all(x)
    for a, b in zip(trained_out, deployed_out):
        # mean-only is the same arithmetic; weight-scale moves 2**e from the current to the threshold,
        # which the integer dynamics round slightly differently.
        limit = 0 if norm == "mean-only" else 0.02
        assert float((a != b).float().mean()) <= limit
    chip = _chip_form(net)
    biases = [chip_bias(b) for b in chip.blocks if chip_bias(b) is not None]
    assert len(biases) == 2 and all(bool((bias != 0).any()) for bias in biases)
    path = write_netx(chip, tmp_path / "m.net", {"timesteps": T})
    with h5py.File(path) as h:
        assert "bias" in h["layer/1"] and "weight_exp" not in h["layer/1/neuron"]
    netfile = read_net(path)
    spikes = (np.random.default_rng(1).random((3, 2, 16, 16, T)) < 0.4).astype(np.uint8)
    with torch.no_grad():
        outs = chip.forward_all(torch.from_numpy(spikes.astype(np.float32)))
    outs = [o.numpy() for o, b in zip(outs, chip.blocks) if type(b).__name__ != "Flatten"]
    assert sum(int(o.sum()) for o in outs[1:]) > 0
    for rec, ref in zip(emu.emulate(netfile, spikes, record="all"), outs):
        ref = ref.transpose(0, 3, 2, 1, 4) if ref.ndim == 5 else ref
        np.testing.assert_array_equal(rec.spikes, ref, err_msg=rec.name)


def test_weight_scale_moves_its_power_of_two_into_the_threshold():
    net = _trained("vgg", "weight-scale")
    deployed = chip_norms(net)
    for i, scale in enumerate((0.25, 4.0)):  # sqrt(0.02) → 2**-2, sqrt(5) → 2**2
        norm = net.blocks[i].neuron.norm
        assert float(norm.std(norm.running_var).reshape(-1)[0]) == scale
        assert deployed.blocks[i].neuron.threshold == pytest.approx(net.blocks[i].neuron.threshold * scale)
        assert isinstance(deployed.blocks[i].neuron.norm, NeuronBias)


def test_sma_attention_from_the_input_stays_exact_with_a_norm_values_and_gradients():
    """The norm acts on the neuron's current, after Z: the branches stay linear, so pooling Y from
    the input and the kernels is still exact, for the attention and for every gradient."""
    torch.manual_seed(2)
    params = {
        "threshold": 0.5,
        "current_decay": 0.25,
        "voltage_decay": 0.03,
        "requires_grad": False,
        "norm": norm_factory("weight-scale", 5),
    }
    block = SMAConv(params, 3, 5, T, (1, 3, 5), stride=2, weight_scale=6)
    block.train()
    x = (torch.rand(2, 3, 9, 9, T) < 0.5).float()

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        params = [p for p in block.parameters() if p.requires_grad]
        return list(torch.autograd.grad(loss, params))

    norm = block.neuron.norm
    state = (norm.running_mean.clone(), norm.running_var.clone())
    fast = block.spikes(block.current(x))
    g_fast = grads(fast.sum())
    norm.running_mean, norm.running_var = state[0].clone(), state[1].clone()
    m = block.branch_currents(x)  # [B, N, C, H, W, T]
    w_alpha, w_beta = block.attention(m)
    scale = (w_alpha[..., None] * w_beta).permute(0, 1, 3, 2)  # [B, N, C, T]
    direct = block.spikes((m * scale[:, :, :, None, None, :]).sum(dim=1))
    g_direct = grads(direct.sum())
    assert fast.sum() > 0
    torch.testing.assert_close(fast, direct)
    for a, b in zip(g_fast, g_direct):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
