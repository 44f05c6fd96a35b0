import numpy as np
import pytest
import torch
import torch.nn.functional as F

from train.models.fold import factorize, fold, merge_kernels
from train.models.folded import quantize_gain


def test_separable_attention_factorizes_exactly():
    rng = torch.Generator().manual_seed(0)
    g = torch.rand(6, 5, generator=rng) + 0.5  # [T, C]
    r = torch.rand(4, 5, generator=rng) + 0.1  # [N, C]
    s = g.unsqueeze(0) * r.unsqueeze(1)
    g2, r2, err = factorize(s)
    assert err < 1e-6
    torch.testing.assert_close(g2.unsqueeze(0) * r2.unsqueeze(1), s)


def test_factorization_keeps_the_sum_over_scales():
    s = torch.rand(4, 7, 3, generator=torch.Generator().manual_seed(1))
    g, r, err = factorize(s)
    torch.testing.assert_close((g.unsqueeze(0) * r.unsqueeze(1)).sum(0), s.sum(0))
    assert 0 < err < 1


def test_merged_kernel_equals_weighted_sum_of_branch_convolutions():
    gen = torch.Generator().manual_seed(2)
    kernels = [torch.randn(3, 2, k, k, generator=gen) for k in (1, 3, 5, 7)]
    r = torch.rand(4, 3, generator=gen)
    x = torch.randn(1, 2, 12, 12, generator=gen)
    branches = sum(r[n].view(1, -1, 1, 1) * F.conv2d(x, k, padding=k.shape[-1] // 2) for n, k in enumerate(kernels))
    merged = F.conv2d(x, merge_kernels(kernels, r), padding=3)
    torch.testing.assert_close(merged, branches, atol=1e-5, rtol=1e-5)


def test_fold_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="branch kernels"):
        fold([torch.zeros(1, 1, 3, 3)], torch.ones(2, 3, 1))
    with pytest.raises(ValueError, match="odd square"):
        merge_kernels([torch.zeros(1, 1, 2, 2)], torch.ones(1, 1))


def test_quantized_gain_is_close_and_in_range():
    g = torch.tensor([[0.5, 1.0], [1.7, 0.01]])
    mant, exp = quantize_gain(g)
    assert mant.dtype == np.int32 and mant.max() <= 4095 and 0 <= exp <= 15
    np.testing.assert_allclose(mant / 2**exp, g.numpy(), atol=2**-exp)
    mant1, exp1 = quantize_gain(torch.ones(3, 2))
    assert np.all(mant1 == 1 << exp1)  # gain 1 is exact
    with pytest.raises(ValueError):
        quantize_gain(torch.tensor([[-1.0]]))


def _sma_net(T=6):
    from train.config import TrainConfig
    from train.models import build_model

    cfg = TrainConfig(model="sma-vgg", input_size=16, timesteps=T, channels=[4, 6], hidden=8)
    net = build_model(cfg, num_classes=3)
    net.materialize()
    return net.eval()


def test_folding_constant_attention_is_exact():
    """With attention that does not depend on the input, the folded block spikes exactly as SMA."""
    from train.models.fold import fold_block, sma_blocks

    torch.manual_seed(0)
    net = _sma_net()
    block = sma_blocks(net)[0]
    n, T, c = len(block.branches), block.timesteps, block.branches[0].out_channels
    # A separable fixed scaling s = g[t, c] · r[n, c] with g exactly representable by the chip's gain.
    # Per channel, a shuffled schedule with time-mean 1: the factorisation then gives r = 1, which
    # keeps the merged kernel on the chip's 8-bit weight grid, so nothing is re-rounded.
    base = torch.tensor([0.5, 1.5, 0.75, 1.25, 1.0, 1.0], dtype=torch.float64)
    g = torch.stack([base[torch.randperm(T)] for _ in range(c)], dim=1)
    x = (torch.rand(3, 4, 8, 8, T) < 0.4).float()
    s = g.unsqueeze(0) * torch.ones(n, 1, c).double()
    with torch.no_grad():  # branch weights small enough that their sum stays in the 8-bit range
        for b in block.branches:
            b.weight.mul_(0.2)
    folded, err = fold_block(block, s)
    assert err < 1e-9
    with torch.no_grad():
        expected = block.forward_scaled(x, s.float())
        got = folded(x)
    assert expected.sum() > 0
    assert torch.equal(expected, got)
    # Any other r (here one that also outgrows the weight range: the gain takes a power of two)
    # re-quantises the merged kernel: spikes then agree up to that rounding.
    s = g.unsqueeze(0) * (4 * torch.rand(n, c).double() + 1).unsqueeze(1)
    folded, err = fold_block(block, s)
    assert err < 1e-9
    assert folded.gain.max().item() > g.max().item()
    with torch.no_grad():
        mismatch = (block.forward_scaled(x, s.float()) != folded(x)).float().mean().item()
    assert mismatch < 0.02, mismatch


def test_fold_network_replaces_every_sma_block_and_exports_gains(tmp_path):
    import h5py
    from lava.lib.dl import netx

    from chipnet.netwriter import write_netx
    from train.models.fold import calibrate, fold_network
    from train.models.folded import FoldedConv
    from train.models.sma import SMAConv

    net = _sma_net()
    batches = [(torch.rand(2, 2, 16, 16, 6) < 0.3).float() for _ in range(2)]
    stats = calibrate(net, batches)
    assert len(stats) == 1 and stats[0].shape == (4, 6, 6)
    torch.testing.assert_close(stats[0].sum(0).sum(-1) * 0 + 1, torch.ones(6, dtype=torch.float64))
    folded, errors = fold_network(net, stats)
    assert not any(isinstance(b, SMAConv) for b in folded.blocks)
    assert sum(isinstance(b, FoldedConv) for b in folded.blocks) == 1 and len(errors) == 1
    for per_timestep in (True, False):
        f, _ = fold_network(net, stats, per_timestep=per_timestep)
        path = write_netx(f, tmp_path / f"m{per_timestep}.net", {"timesteps": 6})
        with h5py.File(path) as h:
            assert ("gain_mant" in h["layer/2"]) == per_timestep
            if per_timestep:
                assert h["layer/2/gain_mant"].shape == (6, 6)
        net_proc = netx.hdf5.Network(net_config=str(path))  # stock NetX reads both forms
        assert net_proc.out.shape == (3,)


@pytest.mark.parametrize("per_timestep", [True, False], ids=["per-timestep", "static"])
def test_a_fold_under_near_uniform_attention_keeps_the_weight_precision(per_timestep):
    """Softmax attention makes Σ_n r[n, c] ≤ 1 (≈ 1/N when uniform): the merged kernel is smaller than
    the branches, so the fold scales it *up* into the 8-bit range and the threshold takes it back."""
    from train.models.fold import fold_block
    from train.models.sma import SMAConv

    torch.manual_seed(4)
    params = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "requires_grad": False}
    block = SMAConv(params, 64, 128, 4, stride=2, weight_scale=2 * 4**1.5)
    n = len(block.branches)
    s = torch.full((n, 4, 128), 1.0 / n**2, dtype=torch.float64)  # W_α = W_β = 1/N: Σ_n r = 1/N
    s[:, :, :64] *= 1.5  # two groups of channels, and a time schedule, so the gain has work to do
    s *= torch.tensor([1.0, 0.8, 1.2, 1.0], dtype=torch.float64).view(1, 4, 1)
    folded, _ = fold_block(block, s, per_timestep=per_timestep)
    exact, _ = fold_block(block, s, per_timestep=per_timestep, quantized=False)
    q = folded.synapse.pre_hook_fx(folded.synapse.weight)[..., 0]
    ints = (q * 64).round()
    assert ints.abs().max() >= 128  # weight_range_used >= 0.5 (it was 12 of 254 before)
    # The threshold took back the power of two, and the 8-bit rounding error against the float
    # fold is small, also on the outer 7×7 ring.
    k = float(folded.threshold) / block.neuron.threshold
    assert k >= 2 and k == 2 ** round(np.log2(k)) and float(exact.threshold) == float(folded.threshold)
    ref = exact.synapse.weight[..., 0]
    rel = ((q - ref).norm() / ref.norm()).item()
    unscaled = folded.neuron.quantize_8bit(ref / k) * k  # the same kernel rounded without the scaling
    assert rel < 0.06 and ((unscaled - ref).norm() / ref.norm()).item() > 0.3, rel
    ring = torch.ones(7, 7, dtype=torch.bool)
    ring[1:6, 1:6] = False
    assert float((ints[:, :, ring] == 0).float().mean()) < 0.2
    assert float((unscaled[:, :, ring] == 0).float().mean()) > 0.5  # without the scaling most of it rounds to 0
    if per_timestep:  # the gain schedule is kept, not folded into the scaling
        torch.testing.assert_close(folded.gain.detach().double(), exact.gain.detach().double())
    # And the two spike alike.
    x = (torch.rand(2, 64, 12, 12, 4) < 0.3).float()
    with torch.no_grad():
        a, b = folded(x), exact(x)
    assert a.sum() > 0 and float((a != b).float().mean()) < 0.03
