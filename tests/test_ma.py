"""MA-SNN attention (ma-vgg): the block, its fold into a per-timestep gain, export parity, TCSA refused."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from conftest import run_cli
from lava.lib.dl import netx

from chipnet.errors import ConfigError, FoldError, SmaLavaError
from train.config import TrainConfig
from train.models import build_model
from train.models.fold import attention_blocks, calibrate, fold_block, fold_network
from train.models.folded import FoldedConv
from train.models.ma import MAConv

NEURON = {
    "threshold": 1.25,
    "current_decay": 0.25,
    "voltage_decay": 0.03,
    "tau_grad": 0.03,
    "scale_grad": 3.0,
    "requires_grad": False,
}
T = 6


def spikes(b: int = 3, c: int = 3, size: int = 9, t: int = T, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, c, size, size, t, generator=g) < p).float()


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(
        **{"model": "ma-vgg", "input_size": 16, "timesteps": T, "channels": [4, 6, 8], "hidden": 16, **kw}
    )


@pytest.mark.parametrize("attention", ["tca", "tcsa"])
def test_block_shapes_and_data_dependent_attention(attention):
    torch.manual_seed(0)
    block = MAConv(NEURON, 3, 5, T, stride=2, attention=attention, weight_scale=8)
    out = block(spikes())
    assert out.shape == (3, 5, 5, 5, T) and set(out.unique().tolist()) <= {0.0, 1.0}
    att = dict(block.last_attention)
    assert att["temporal"].shape == (3, T) and att["channel"].shape == (3, T, 5)
    assert ("spatial" in att) == (attention == "tcsa")
    if attention == "tcsa":
        assert att["spatial"].shape == (3, T, 5, 5)
    for a in att.values():
        assert ((a > 0) & (a < 1)).all()  # sigmoids: the folded gain fits the gain mantissa
    # Data-dependent: other samples, other weights (per sample and per step).
    assert not torch.allclose(att["temporal"][0], att["temporal"][1])
    block(spikes(p=0.6, seed=1))
    assert not torch.allclose(block.last_attention["channel"], att["channel"])


def test_tca_current_is_the_conv_current_times_both_attentions():
    torch.manual_seed(1)
    block = MAConv(NEURON, 3, 4, T, weight_scale=8)
    x = spikes(seed=1)
    z = block.current(x)
    a_t, a_c = block.last_attention["temporal"], block.last_attention["channel"]
    expected = block.synapse(x) * (a_t[..., None] * a_c).transpose(1, 2)[:, :, None, None, :]
    torch.testing.assert_close(z, expected)
    # The calibrated statistic (a_t · a_c per sample) passed back as a fixed scale gives the same block.
    assert torch.equal(block.forward_scaled(x, block.attention_scale()), block(x))
    with pytest.raises(ValueError, match=r"scale must be \[T, C\]"):
        block.current(x, torch.ones(4, T))
    with pytest.raises(ValueError, match="built for T=6"):
        block(spikes(t=4))


@pytest.mark.parametrize("attention", ["tca", "tcsa"])
def test_gradients_reach_every_ma_parameter(attention):
    torch.manual_seed(2)
    block = MAConv(NEURON, 3, 4, T, attention=attention, weight_scale=8)
    block(spikes(seed=2, p=0.5)).sum().backward()
    trainable = {name: p for name, p in block.named_parameters() if p.requires_grad}
    want = {"synapse", "temporal", "channel"} | ({"spatial"} if attention == "tcsa" else set())
    assert {n.split(".")[0] for n in trainable} == want
    for name, p in trainable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ma_vgg_places_its_blocks_like_sma_and_checks_its_options():
    net = build_model(_cfg(), 11)
    assert [type(b).__name__ for b in net.blocks] == ["Conv", "MAConv", "Conv", "Flatten", "Dense", "Dense"]
    outs = net.forward_all(spikes(b=2, c=2, size=16))
    assert [tuple(o.shape) for o in outs][:3] == [(2, 4, 8, 8, T), (2, 6, 4, 4, T), (2, 8, 2, 2, T)]
    net = build_model(_cfg(ma_layers=[1, 2], ma_attention="tcsa", ma_reduction=2), 11)
    assert [b.spatial is not None for b in attention_blocks(net)] == [True, True]
    with pytest.raises(ConfigError, match="not conv layers"):
        build_model(_cfg(ma_layers=[3]), 11)
    with pytest.raises(ConfigError, match="ma_attention"):
        build_model(_cfg(ma_attention="sa"), 11)
    with pytest.raises(ConfigError, match="ma_reduction"):
        TrainConfig.from_dict({"ma_reduction": 0})
    # The deployable shell (deploy-aware fine-tuning) of a TCA net is a FoldedConv with unit gains.
    shell = build_model(_cfg(folded="per-timestep"), 11)
    assert type(shell.blocks[1]) is FoldedConv and torch.equal(shell.blocks[1].gain.detach(), torch.ones(T, 6))


def test_folding_constant_attention_is_exact():
    """With attention that does not depend on the input, the folded block spikes exactly as the MA block."""
    torch.manual_seed(3)
    block = MAConv(NEURON, 4, 6, T, stride=2, weight_scale=8).eval()
    # A fixed gain in (0, 1] that the chip's mantissa holds exactly (multiples of 1/16).
    g = torch.randint(1, 17, (T, 6), generator=torch.Generator().manual_seed(3)).double() / 16
    x = spikes(b=4, c=4, size=12, p=0.4, seed=3)
    folded, err = fold_block(block, g)
    assert err == 0.0
    with torch.no_grad():
        expected, got = block.forward_scaled(x, g.float()), folded(x)
    assert expected.sum() > 0 and torch.equal(expected, got)
    # The kernel is the trained one scaled by a power of two into the 8-bit range; the threshold took it back.
    k = float(folded.threshold) / block.neuron.threshold
    assert k >= 1 and k == 2 ** round(np.log2(k))
    q = folded.synapse.pre_hook_fx(folded.synapse.weight)[..., 0]
    torch.testing.assert_close(q, block.kernel().detach() * k, rtol=0, atol=0)
    assert float((q * 64).abs().max()) > 127
    # Static: the gain's time mean in the kernel, re-rounded, so close but not exact.
    static, _ = fold_block(block, g, per_timestep=False)
    with torch.no_grad():
        assert float((static(x) != block.forward_scaled(x, g.mean(0).expand(T, 6).float())).float().mean()) < 0.03


def test_calibration_is_the_mean_attention_and_the_fold_exports_its_gain(tmp_path):
    from chipnet.netwriter import write_netx

    torch.manual_seed(4)
    net = build_model(_cfg(channels=[4, 6]), 3)
    net.materialize()
    batches = [spikes(b=2, c=2, size=16, seed=s) for s in range(2)]
    (stats,) = calibrate(net, batches)
    block = attention_blocks(net)[0]
    expected = torch.zeros(T, 6, dtype=torch.float64)
    with torch.no_grad():  # the mean over the 4 samples of each sample's a_t · a_c
        for b in batches:
            net(b)
            expected += block.attention_scale().double().sum(0) / 4
    torch.testing.assert_close(stats, expected)
    assert stats.shape == (T, 6) and 0 < float(stats.min()) and float(stats.max()) < 1
    folded, errors = fold_network(net, [stats])
    assert errors == [0.0] and [type(b).__name__ for b in folded.blocks][:2] == ["Conv", "FoldedConv"]
    path = write_netx(folded, tmp_path / "m.net", {"timesteps": T})
    with h5py.File(path) as h:
        assert h["layer/2/gain_mant"].shape == (T, 6) and h["layer/2/weight"].shape == (6, 4, 3, 3)
        mant, exp = h["layer/2/gain_mant"][()], int(h["layer/2/gain_exp"][()])
    np.testing.assert_allclose(mant / 2**exp, folded.blocks[1].gain.detach().numpy(), atol=2**-exp)
    assert netx.hdf5.Network(net_config=str(path)).out.shape == (3,)


def test_tcsa_is_refused_for_export_with_the_layer_and_the_reason():
    net = build_model(_cfg(ma_attention="tcsa"), 3)
    net.materialize()
    stats = calibrate(net, [spikes(b=2, c=2, size=16)])
    with pytest.raises(FoldError, match=r"conv layer 1 has MA spatial attention.*shares its weights") as e:
        fold_network(net, stats)
    assert isinstance(e.value, SmaLavaError) and "ma_attention: tca" in str(e.value)
    with pytest.raises(FoldError, match="spatial attention"):
        build_model(_cfg(ma_attention="tcsa", folded="per-timestep"), 3)


def test_export_cli_refuses_a_tcsa_run_in_one_line(tmp_path):
    from train.loop import train

    cfg = _cfg(
        dataset_options={"samples_per_class": 2, "seed": 5},
        channels=[4, 6],
        ma_attention="tcsa",
        epochs=1,
        batch_size=8,
        cache_dir=str(tmp_path / "cache"),
    )
    train(cfg, tmp_path / "run")
    proc = run_cli("export/to_netx.py", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "m.net"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: conv layer 1 has MA spatial attention" in proc.stderr and not (tmp_path / "m.net").exists()


@pytest.fixture(scope="module")
def exported_ma(tiny_ma_run):
    """The tiny ma-vgg run exported by the CLI, with ONNX."""
    out = tiny_ma_run / "model.net"
    run_cli("export/to_netx.py", "--run", str(tiny_ma_run), "--out", str(out), "--calib-samples", "16", "--onnx")
    return out


def test_export_json_has_the_accuracy_table_and_the_file_has_gains(exported_ma):
    report = json.loads((exported_ma.parent / "export.json").read_text())
    assert report["model"] == "ma-vgg" and report["sma_mode"] == "per-timestep"
    acc = report["accuracy"]
    for key in ("dynamic", "folded_float", "fixed_point", "static_fixed_point"):
        assert 0.0 <= acc[key] <= 1.0
    assert acc["drop_total_pp"] == pytest.approx(100 * (acc["dynamic"] - acc["fixed_point"]))
    assert report["fold_rel_error"] == [0.0] and report["calibration_samples"] == 16
    assert [row["name"] for row in report["layers"]] == ["0:conv", "1:conv", "2:dense", "3:dense"]
    assert report["layers"][1]["fan_in"] == 4 * 3 * 3  # the MA layer deploys as its own 3×3 conv
    with h5py.File(exported_ma) as h:
        assert h["layer/2/gain_mant"].shape == (8, 6) and "gain_mant" not in h["layer/1"]
        assert json.loads(h.attrs["model"]) == "ma-vgg"


def test_folded_torch_emulator_and_onnx_spike_alike(tiny_ma_run, tmp_path):
    from export.onnx_graph import run_onnx, write_onnx
    from export.pipeline import export_run
    from lava_runtime import emu

    _, folded, netfile = export_run(tiny_ma_run, tmp_path / "m.net", calib_samples=8, verify_samples=4)
    assert any(layer.gain is not None for layer in netfile.layers)
    x = (np.random.default_rng(3).random((4, 2, 16, 16, 8)) < 0.3).astype(np.uint8)
    with torch.no_grad():
        outs = folded.forward_all(torch.from_numpy(x.astype(np.float32)))
    outs = [o.numpy() for o, b in zip(outs, folded.blocks) if type(b).__name__ != "Flatten"]
    records = emu.emulate(netfile, x, record="all")
    assert sum(int(o.sum()) for o in outs) > 0 and int(outs[1].sum()) > 0  # the MA layer spikes
    for rec, ref in zip(records, outs):
        np.testing.assert_array_equal(rec.spikes, ref.transpose(0, 3, 2, 1, 4) if ref.ndim == 5 else ref)
    onnx_path = write_onnx(netfile, tmp_path / "m.onnx")
    for rec, got in zip(records, run_onnx(onnx_path, x)):
        ref = rec.spikes.transpose(0, 3, 2, 1, 4) if rec.spikes.ndim == 5 else rec.spikes
        np.testing.assert_array_equal(got, ref, err_msg=rec.name)


@pytest.mark.lava
def test_lava_sim_matches_the_emulator_and_validate_agrees(exported_ma):
    from chipnet.netfile import read_net
    from lava_runtime import emu
    from lava_runtime.simulate import simulate

    x = (np.random.default_rng(5).random((3, 2, 16, 16, 8)) < 0.3).astype(np.uint8)
    lava = simulate(exported_ma, x, backend="sim", record="all")
    ref = emu.emulate(read_net(exported_ma), x, record="all")
    assert [r.gain for r in lava][:2] == [False, True]
    for a, b in zip(lava, ref):
        np.testing.assert_array_equal(a.spikes, b.spikes, err_msg=a.name)
    assert int(lava[1].spikes.sum()) > 0
    proc = run_cli(
        "-m", "lava_runtime", "validate", "--net", str(exported_ma), "--dataset", "synthgesture", "--samples", "4"
    )
    assert "sim vs emu: 4/4 samples identical" in proc.stdout, proc.stdout
