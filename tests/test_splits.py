"""Validation hold-out and calibration subsets: seeded, stratified, whole DVS Gesture users, never test."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data_formats import AEDAT31_HEADER, packet, polarity, write_ibm_gesture

from chipnet.errors import ConfigError
from train.config import TrainConfig
from train.data import calibration_spikes, event_dataset
from train.data.splits import stratified_subset, validation_split
from train.loop import load_selected, load_splits

LABELS = np.repeat([0, 1, 2], [40, 20, 10])[np.random.default_rng(0).permutation(70)]  # unbalanced, shuffled


def test_stratified_validation_split_keeps_class_proportions_and_is_disjoint():
    train, val = validation_split(LABELS, None, 0.2, seed=4)
    assert len(val) == 14 and np.bincount(LABELS[val]).tolist() == [8, 4, 2]
    assert np.intersect1d(train, val).size == 0 and sorted(np.r_[train, val]) == list(range(70))
    again = validation_split(LABELS, None, 0.2, seed=4)
    assert np.array_equal(again[1], val) and not np.array_equal(validation_split(LABELS, None, 0.2, seed=5)[1], val)
    train, val = validation_split(LABELS, None, 0.0, seed=4)
    assert len(val) == 0 and train.tolist() == list(range(70))
    assert len(validation_split(LABELS[:5], None, 0.01, seed=0)[1]) == 1  # at least one sample
    with pytest.raises(ConfigError, match="val_fraction"):
        validation_split(LABELS, None, 1.0, seed=0)


def test_stratified_subset_is_proportional_seeded_and_whole_when_n_is_large():
    pick = stratified_subset(LABELS, 35, seed=1)
    assert len(pick) == 35 and len(set(pick.tolist())) == 35 and np.bincount(LABELS[pick]).tolist() == [20, 10, 5]
    assert np.array_equal(pick, stratified_subset(LABELS, 35, seed=1))
    assert not np.array_equal(pick, stratified_subset(LABELS, 35, seed=2))
    assert pick.tolist() != sorted(range(35))  # not the first N samples
    for n in (70, 1000):
        assert stratified_subset(LABELS, n, seed=1).tolist() == list(range(70))
    # 7 samples of 40/20/10: largest remainders give 4/2/1, every class represented.
    assert np.bincount(LABELS[stratified_subset(LABELS, 7, seed=3)]).tolist() == [4, 2, 1]


def write_gesture_users(root: Path, users: int) -> list[str]:
    """The IBM layout of test_data_formats plus ``users`` training users, each with three gestures."""
    folder = write_ibm_gesture(root)
    names = ["user01_fluorescent.aedat"]
    for u in range(2, users + 1):
        name = f"user{u:02d}_{'led' if u % 2 else 'lab'}"
        events = b"".join(polarity(u, k, k % 2, 1000 * k + u) for k in range(6))
        (folder / f"{name}.aedat").write_bytes(AEDAT31_HEADER + packet(1, 8, events))
        (folder / f"{name}_labels.csv").write_bytes(
            b"class,startTime_usec,endTime_usec\n1,0,2000\n2,2000,4000\n3,4000,6000\n"
        )
        names.append(f"{name}.aedat")
    (folder / "trials_to_train.txt").write_text("\n".join(names) + "\n")
    return [n.split("_")[0] for n in names]


def test_dvs_gesture_holds_out_whole_users(tmp_path):
    users = write_gesture_users(tmp_path / "d", 6)
    ds = event_dataset("dvsgesture", "train", tmp_path / "d")
    assert ds.groups.tolist() == ["user01"] * 2 + [u for u in users[1:] for _ in range(3)]
    cfg = TrainConfig(
        dataset="dvsgesture",
        data_root=str(tmp_path / "d"),
        input_size=4,
        timesteps=2,
        cache_dir=str(tmp_path / "c"),
        val_fraction=0.3,
        seed=2,
    )
    train, val, test = load_splits(cfg)
    held = set(val.groups.tolist())
    assert len(held) == 2  # round(0.3 × 6 users)
    assert held.isdisjoint(train.groups.tolist()) and set(train.groups.tolist()) | held == set(users)
    assert len(train) + len(val) == len(ds) == 17 and len(test) == 2
    full = train.base  # both parts are views of the one cached split
    assert val.base is full and len(list((tmp_path / "c").glob("dvsgesture-train-*.npz"))) == 1
    np.testing.assert_array_equal(val.spikes_at(np.arange(len(val))), full.spikes[val.indices])
    x, y = val[0]
    assert (
        torch.equal(x, torch.from_numpy(full.spikes[val.indices[0]].astype(np.float32)))
        and y == full.labels[val.indices[0]]
    )
    again = load_splits(cfg)[1]
    assert np.array_equal(again.indices, val.indices)
    assert len(set(load_splits(dataclasses.replace(cfg, val_fraction=0.05))[1].groups)) == 1  # at least one user
    with pytest.raises(ConfigError, match="all 6 training users"):
        load_splits(dataclasses.replace(cfg, val_fraction=0.95))

    # Calibration draws from the train part only: no held-out user, class-stratified, seeded.
    calib = calibration_spikes(train, 6, seed=0)
    pick = stratified_subset(train.labels, 6, seed=0)
    np.testing.assert_array_equal(calib, full.spikes[train.indices[pick]])
    assert set(train.groups[pick].tolist()).isdisjoint(held)
    assert sorted(np.unique(train.labels[pick], return_counts=True)[1].tolist()) == [2, 2, 2]


def test_export_falls_back_to_checkpoint_for_runs_from_before_validation(tiny_run, tmp_path):
    net, _, state, name = load_selected(tiny_run)
    assert name == "best.pt" and state["selection"] == "val_accuracy"
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(tiny_run / "checkpoint.pt", old / "checkpoint.pt")
    assert load_selected(old)[3] == "checkpoint.pt"
    best = torch.load(tiny_run / "best.pt", weights_only=True)
    del best["selection"]  # a best.pt chosen on test accuracy, as older runs wrote it
    torch.save(best, old / "best.pt")
    assert load_selected(old)[3] == "checkpoint.pt"
