"""Attention Zoneout (Algorithm 1): exactly δt·δc previous-step slices, never t=0, identity in eval."""

from __future__ import annotations

import pytest
import torch

from train.models.azo import AttentionZoneout, paper_deltas, zoneout, zoneout_mask
from train.models.sma import SMAConv, scale_sum

NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3.0}


def attention(b: int, n: int, t: int, c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.softmax(torch.randn(b, n, t, generator=g), 1), torch.softmax(torch.randn(b, n, t, c, generator=g), 1))


@pytest.mark.parametrize("dt,dc", [(1, 1), (2, 3), (5, 5), (3, 1)])
def test_replaces_exactly_dt_dc_slices_with_previous_step(dt, dc):
    b, n, c, h, w, t = 2, 3, 5, 4, 4, 6
    wa, wb = attention(b, n, t, c, seed=dt * 10 + dc)
    u = torch.randn(b, n, c, h, w, t)
    azo = AttentionZoneout(dt, dc).train()
    r = azo(u, wa, wb)
    changed = (r != u).any(dim=(3, 4))  # [B, N, C, T]: (t, c) slices that differ
    for bi in range(b):
        for ni in range(n):
            assert int(changed[bi, ni].sum()) == dt * dc
            # Which slices: the δt smallest W_α among t ≥ 1, in each the δc smallest W_β.
            steps = sorted(torch.argsort(wa[bi, ni, 1:])[:dt].add(1).tolist())
            expect = torch.zeros(c, t, dtype=torch.bool)
            for s in steps:
                expect[torch.argsort(wb[bi, ni, s])[:dc], s] = True
            assert torch.equal(changed[bi, ni], expect)
            for s in steps:
                for ch in expect[:, s].nonzero().flatten().tolist():
                    assert torch.equal(r[bi, ni, ch, :, :, s], u[bi, ni, ch, :, :, s - 1])
    assert torch.equal(r[..., 0], u[..., 0])
    assert torch.equal(azo.last_mask.permute(0, 1, 3, 2), changed)


def test_never_touches_t0_even_where_its_attention_is_smallest():
    b, n, t, c = 1, 2, 4, 3
    wa = torch.tensor([[[0.01, 0.5, 0.3, 0.4], [0.02, 0.6, 0.2, 0.9]]])
    wb = torch.full((b, n, t, c), 1 / n)
    wb[..., 0, :] = 0.0  # t=0 is also the weakest in every channel
    mask = zoneout_mask(wa, wb, delta_t=2, delta_c=3)
    assert not mask[..., 0, :].any()
    assert mask[0, 0, :, 0].tolist() == [False, False, True, True]  # steps 2 and 3 (0.3, 0.4)
    assert mask[0, 1, :, 0].tolist() == [False, True, True, False]  # steps 1 and 2 (0.6, 0.2)


def test_previous_value_is_the_original_not_a_replaced_one():
    # Consecutive picked steps both read Z (Algorithm 1, line 10), not the partially replaced R.
    u = torch.arange(4.0).reshape(1, 1, 1, 1, 1, 4)
    mask = torch.tensor([[[[False], [True], [True], [False]]]])
    assert zoneout(u, mask).flatten().tolist() == [0.0, 0.0, 1.0, 3.0]


def test_identity_in_eval_and_gradient_goes_to_the_previous_step():
    wa, wb = attention(2, 4, 5, 6, seed=1)
    u = torch.randn(2, 4, 6, 3, 3, 5, requires_grad=True)
    azo = AttentionZoneout(2, 2)
    assert azo.eval()(u, wa, wb) is u
    r = azo.train()(u, wa, wb)
    r.sum().backward()
    # d r / d u[t, c] = (u[t, c] kept) + (r[t+1, c] replaced by it): 0, 1 or 2 per slice.
    mask = azo.last_mask.float()  # [B, N, T, C]
    expect = (1 - mask) + torch.cat([mask[:, :, 1:], torch.zeros_like(mask[:, :, :1])], dim=2)
    grad = u.grad.permute(0, 1, 5, 2, 3, 4)  # [B, N, T, C, H, W]
    assert torch.equal(grad, expect[..., None, None].expand_as(grad))
    assert int(mask.sum()) == 2 * 4 * 2 * 2 and (expect == 0).any()


def test_bad_deltas_are_clear_errors():
    wa, wb = attention(1, 2, 4, 3, seed=0)
    with pytest.raises(ValueError, match="delta_t"):
        zoneout_mask(wa, wb, 4, 1)  # only 3 steps have a previous one
    with pytest.raises(ValueError, match="delta_c"):
        zoneout_mask(wa, wb, 1, 4)
    assert paper_deltas(16, 128) == (4, 12) and paper_deltas(8, 4) == (2, 1)


def test_sma_block_with_azo_zones_out_its_weighted_branches_in_training_only():
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 8, 8, 6) < 0.4).float()
    block = SMAConv(NEURON, 3, 5, 6, azo=AttentionZoneout(2, 2))
    plain = SMAConv(NEURON, 3, 5, 6)
    plain.load_state_dict(block.state_dict())
    z_train = block.train().current(x)
    m = block.branch_currents(x)
    s = block.last_attention["temporal"][..., None] * block.last_attention["channel"]
    u = m * s.permute(0, 1, 3, 2)[:, :, :, None, None, :]
    torch.testing.assert_close(z_train, zoneout(u, block.azo.last_mask).sum(1))
    assert not torch.allclose(z_train, plain.train().current(x))
    torch.testing.assert_close(block.eval().current(x), plain.eval().current(x), rtol=0, atol=0)


@pytest.mark.parametrize("with_zoneout", [False, True])
def test_scale_sum_values_and_gradients_match_autograd_reference(with_zoneout):
    # The SMA block's hand-written Σ_n M_n·s_n (+ AZO rows) against the same sum built from
    # stock ops, in float64: values, ∂M_n and ∂s, including rows whose previous step is masked too.
    g = torch.Generator().manual_seed(7)
    b, t, n, c, h, w = 2, 5, 3, 4, 3, 2
    m = [torch.randn(b * t, c, h, w, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(n)]
    s = torch.rand(b * t, n, c, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(b, t, n, c, generator=g) < 0.4
    mask[:, 0] = False
    mask[0, 1:4, 0, 0] = True  # a run of consecutive replaced steps
    if not with_zoneout:
        mask[:] = False
    z = scale_sum(m, s, mask if with_zoneout else None)
    u = torch.stack(m, 1).unflatten(0, (b, t)).permute(0, 2, 3, 4, 5, 1)  # [B, N, C, H, W, T]
    u = u * s.unflatten(0, (b, t)).permute(0, 2, 3, 1)[:, :, :, None, None, :]
    expected = zoneout(u, mask.transpose(1, 2)).sum(1).permute(0, 4, 1, 2, 3).flatten(0, 1)
    torch.testing.assert_close(z, expected)
    grad = torch.randn(z.shape, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(z, [*m, s], grad)
    want = torch.autograd.grad(expected, [*m, s], grad)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e)
    assert torch.autograd.gradcheck(lambda s_, *m_: scale_sum(list(m_), s_, mask), (s, *m))
