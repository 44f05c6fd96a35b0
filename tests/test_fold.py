import numpy as np
import pytest
import torch
import torch.nn.functional as F

from export.fold import factorize, fold, merge_kernels, quantize_gain


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
    np.testing.assert_allclose(mant / 2**exp, g.numpy(), atol=2 ** -exp)
    mant1, exp1 = quantize_gain(torch.ones(3, 2))
    assert np.all(mant1 == 1 << exp1)  # gain 1 is exact
    with pytest.raises(ValueError):
        quantize_gain(torch.tensor([[-1.0]]))
