"""The decision rule: most spikes, then the earliest first spike; otherwise undecided (never class 0 by default)."""

from __future__ import annotations

import numpy as np
import torch

from chipnet.decision import UNDECIDED, accuracy, decide


def _spikes(*trains: str) -> np.ndarray:
    """One sample, one neuron per string of 0/1 steps."""
    return np.array([[[int(c) for c in t] for t in trains]], np.uint8)


def test_most_spikes_wins():
    d = decide(_spikes("0101", "1111", "0001"))
    assert d.predictions.tolist() == [1] and (d.tied, d.undecided) == (0, 0)


def test_a_tie_goes_to_the_earliest_first_spike_not_to_class_0():
    d = decide(_spikes("0011", "0110", "1000"))  # classes 0 and 1 tie on 2 spikes; 1 fired first
    assert d.predictions.tolist() == [1] and (d.tied, d.undecided) == (1, 0)
    # A lower class that fires earlier but less often does not win.
    assert decide(_spikes("1000", "0011")).predictions.tolist() == [1]


def test_unbreakable_ties_are_undecided_and_count_as_errors():
    silent = np.zeros((1, 3, 4), np.uint8)
    same = _spikes("0110", "0110", "0001")
    batch = np.concatenate([silent, same, _spikes("0001", "0000", "0000")])
    d = decide(batch)
    assert d.predictions.tolist() == [UNDECIDED, UNDECIDED, 0] and (d.tied, d.undecided) == (2, 2)
    assert accuracy(batch, np.array([0, 0, 0])) == 1 / 3
    # argmax would have called both ties class 0
    assert batch.sum(-1).argmax(-1).tolist() == [0, 0, 0]


def test_torch_and_numpy_inputs_agree_and_shapes_flatten():
    rng = np.random.default_rng(0)
    s = (rng.random((5, 2, 3, 6)) < 0.3).astype(np.uint8)  # neurons [2, 3] flattened as 6 classes
    np.testing.assert_array_equal(decide(torch.from_numpy(s)).predictions, decide(s.reshape(5, 6, 6)).predictions)
    assert decide(np.zeros((0, 3, 4))).predictions.shape == (0,)


def test_graded_outputs_decide_by_the_largest_sum():
    """Sigma-delta outputs: the class with the largest sum over the steps; a shared maximum is undecided."""
    from chipnet.decision import decide_graded

    values = np.array(
        [
            [[5, -1, 0], [1, 1, 1], [0, 0, 0]],  # sums 4, 3, 0 → class 0
            [[-9, -9, 0], [0, 0, -1], [-2, 0, 0]],  # all negative: -18, -1, -2 → class 1
            [[2, 0, 0], [0, 1, 1], [0, 0, 0]],  # 2, 2 tie → undecided
        ]
    )
    d = decide_graded(values)
    assert d.predictions.tolist() == [0, 1, UNDECIDED]
    assert (d.tied, d.undecided) == (1, 1)
