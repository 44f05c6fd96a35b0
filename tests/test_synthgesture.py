import numpy as np
import pytest

from chipnet.errors import DatasetError
from train.data import FrameDataset, event_dataset
from train.data.synthgesture import SynthGesture


def test_samples_are_deterministic_per_seed_and_differ_across_seeds():
    a, b, c = SynthGesture("train", 2, seed=1), SynthGesture("train", 2, seed=1), SynthGesture("train", 2, seed=2)
    ev_a, y_a = a[5]
    ev_b, y_b = b[5]
    ev_c, _ = c[5]
    assert y_a == y_b == 5
    np.testing.assert_array_equal(ev_a, ev_b)
    assert len(ev_a) != len(ev_c) or not np.array_equal(ev_a, ev_c)


def test_events_are_valid_dvs_events_for_every_class():
    ds = SynthGesture("test", 1, seed=0)
    assert len(ds) == 11 and len(ds.classes) == 11
    for i in range(len(ds)):
        ev, label = ds[i]
        assert label == i
        assert len(ev) > 1000
        assert ev["x"].min() >= 0 and ev["x"].max() < 128
        assert ev["y"].min() >= 0 and ev["y"].max() < 128
        assert set(np.unique(ev["p"])) <= {0, 1}
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["t"].min() >= 0 and ev["t"].max() < ds.duration_us
        assert 0.2 < ev["p"].mean() < 0.8  # moving edges give both polarities


def test_train_and_test_splits_differ():
    tr, te = SynthGesture("train", 1), SynthGesture("test", 1)
    assert not np.array_equal(tr[0][0], te[0][0])
    with pytest.raises(ValueError, match="unknown split"):
        SynthGesture("val", 1)


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(DatasetError, match="synthgesture"):
        event_dataset("nope", "train")


def test_frame_dataset_caches_identical_tensors(tmp_path):
    opts = {"samples_per_class": 1, "seed": 3}
    first = FrameDataset("synthgesture", "train", 16, 8, opts, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = FrameDataset("synthgesture", "train", 16, 8, opts, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.spikes, second.spikes)
    x, y = second[4]
    assert tuple(x.shape) == (2, 16, 16, 8) and y == 4
    assert set(np.unique(first.spikes)) <= {0, 1}
