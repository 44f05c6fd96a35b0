"""The shared event → tensor pipeline: denoise, out-of-sensor events, augmentation, ndigits, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chipnet.errors import DatasetError
from chipnet.events import denoise, make_events, to_frames
from train.data import Augment, FrameDataset, event_dataset
from train.data.ndigits import NDigits


def reference_denoise(events: np.ndarray, width: int, height: int, filter_time: int) -> np.ndarray:
    """tonic's per-event loop, without its start-up quirk (memory starts empty)."""
    last = np.full((width, height), -(10**12), dtype=np.int64)
    keep = []
    for e in events:
        x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
        ok = any(
            0 <= x + dx < width and 0 <= y + dy < height and t - last[x + dx, y + dy] < filter_time
            for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1))
        )
        last[x, y] = t
        keep.append(ok)
    return events[np.array(keep, dtype=bool)]


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_denoise_matches_the_per_event_rule(seed):
    rng = np.random.default_rng(seed)
    n = 400
    ev = make_events(
        rng.integers(0, 6, n), rng.integers(0, 5, n), rng.integers(0, 2, n), np.sort(rng.integers(0, 3000, n))
    )
    got = denoise(ev, (6, 5, 2), 50)
    want = reference_denoise(ev, 6, 5, 50)
    np.testing.assert_array_equal(got, want)
    assert 0 < len(got) < n


def test_denoise_keeps_supported_events_only():
    ev = make_events(
        np.array([5, 6, 20, 6]), np.array([5, 5, 20, 5]), np.array([1, 1, 0, 1]), np.array([0, 10, 15, 500])
    )
    out = denoise(ev, (32, 32, 2), 100)
    assert out["t"].tolist() == [10]  # (6,5) at t=10 has its neighbour (5,5) 10 µs before; the rest are alone


def test_to_frames_leaves_out_events_outside_the_sensor():
    ev = make_events(np.array([0, 40, 3]), np.array([0, 0, 39]), np.array([1, 1, 0]), np.array([0, 1, 2]))
    f = to_frames(ev, (34, 34, 2), 34, 1)
    assert f.sum() == 1 and f[1, 0, 0, 0] == 1


def test_augment_shift_flip_drop():
    x = torch.zeros(2, 4, 4, 3)
    x[1, 1, 1, 0] = 1
    torch.manual_seed(0)
    shifted = [Augment(max_shift=1)(x) for _ in range(30)]
    positions = {tuple(torch.nonzero(s)[0].tolist()) for s in shifted if s.sum() == 1}
    assert all(s.sum() == 1 for s in shifted)  # a shift of 1 from (1, 1) never leaves the 4×4 frame
    assert positions <= {(1, 1 + dy, 1 + dx, 0) for dy in (-1, 0, 1) for dx in (-1, 0, 1)} and len(positions) > 3
    flipped = {tuple(torch.nonzero(Augment(hflip=True)(x))[0].tolist()) for _ in range(20)}
    assert flipped == {(1, 1, 1, 0), (1, 1, 2, 0)}
    full = torch.ones(2, 8, 8, 16)
    kept = Augment(drop=0.25)(full).mean().item()
    assert 0.7 < kept < 0.8
    assert Augment.from_options({}) is None and Augment.from_options({"drop": 0.0}) is None
    with pytest.raises(DatasetError, match="unknown option"):
        Augment.from_options({"rotate": 5})


def test_hflip_is_refused_for_left_right_gestures(tmp_path):
    with pytest.raises(DatasetError, match="hflip"):
        FrameDataset(
            "synthgesture", "train", 8, 4, {"samples_per_class": 1}, cache_dir=None, augment=Augment(hflip=True)
        )


def test_training_split_augments_on_every_access(tmp_path):
    ds = FrameDataset(
        "ndigits", "train", 16, 4, {"samples_per_class": 1}, cache_dir=tmp_path, augment=Augment(max_shift=3)
    )
    torch.manual_seed(1)
    a, la = ds[0]
    b, lb = ds[0]
    assert la == lb and not torch.equal(a, b) and a.sum() > 0


def test_ndigits_is_deterministic_with_a_fixed_split():
    train, test = NDigits("train"), NDigits("test")
    assert len(train) == 1433 and len(test) == 364
    assert not set(train.image_index) & set(test.image_index)
    assert np.bincount(test.targets).min() == 35 and np.bincount(test.targets).max() == 37
    small = NDigits("train", samples_per_class=2, seed=4)
    assert len(small) == 20 and np.bincount(small.targets).tolist() == [2] * 10
    a, la = small[3]
    b, lb = NDigits("train", samples_per_class=2, seed=4)[3]
    c, _ = NDigits("train", samples_per_class=2, seed=5)[3]
    assert la == lb and np.array_equal(a, b) and not np.array_equal(a, c)
    assert 2000 < len(a) < 12000  # N-MNIST-like event counts
    assert a["x"].max() < 34 and a["y"].max() < 34 and np.all(np.diff(a["t"]) >= 0) and a["t"].max() < 300_000
    assert 0.3 < a["p"].mean() < 0.7


def test_dataset_options_and_splits_are_checked():
    with pytest.raises(DatasetError, match="ndigits: bad dataset options"):
        event_dataset("ndigits", "train", samples=3)
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        event_dataset("ndigits", "val")


def test_cache_key_includes_denoise(tmp_path):
    opts = {"samples_per_class": 1}
    plain = FrameDataset("ndigits", "test", 8, 4, opts, cache_dir=tmp_path)
    clean = FrameDataset("ndigits", "test", 8, 4, opts, cache_dir=tmp_path, denoise_us=2000)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert clean.spikes.sum() < plain.spikes.sum()


def test_download_explains_what_it_needs(tmp_path):
    from train.data import download_dataset

    download_dataset("ndigits", tmp_path)  # generated: nothing to fetch, nothing written
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="cifar10dvs: no automatic download.*figshare"):
        download_dataset("cifar10dvs", tmp_path)
    try:
        import tonic  # noqa: F401
    except ImportError:
        with pytest.raises(DatasetError, match=r"dvsgesture: --download needs tonic \(pip install tonic"):
            download_dataset("dvsgesture", tmp_path)
