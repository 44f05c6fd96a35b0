"""Input like the paper: frames of equal event count, and event counts as graded input (torch = file = emu = Lava)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from chipcheck import assert_file_equals_chip, tiny_config

from chipnet.errors import RuntimeConfigError
from chipnet.events import COUNT_MAX
from chipnet.netfile import read_net
from chipnet.netwriter import write_netx
from export.weight_range import fill_weight_range
from lava_runtime import emu
from lava_runtime.runner import validate_arrays
from chipnet.events import encode, make_events, to_frames
from train.data import FrameDataset
from train.models import build_model
from train.models.norm import chip_norms

T = 6


def test_count_binning_gives_every_frame_the_same_number_of_events():
    rng = np.random.default_rng(0)
    t = np.sort(np.concatenate([rng.integers(0, 1000, 50), rng.integers(9000, 10000, 250)]))  # a burst at the end
    ev = make_events(rng.integers(0, 8, 300), rng.integers(0, 8, 300), rng.integers(0, 2, 300), t)
    by_count = to_frames(ev, (8, 8, 2), 8, T, binning="count")
    by_time = to_frames(ev, (8, 8, 2), 8, T, binning="time")
    assert by_count.sum((0, 1, 2)).tolist() == [50] * T  # 300 events / 6 frames
    assert by_time.sum() == 300 and by_time.sum((0, 1, 2)).max() > 100  # equal time: the burst crowds one frame
    with pytest.raises(ValueError, match="binning"):
        to_frames(ev, (8, 8, 2), 8, T, binning="both")


def test_count_encoding_clips_to_the_graded_payload_and_caches_apart(tmp_path):
    frames = np.array([0, 1, 3, 300], np.float32)
    assert encode(frames, "counts").tolist() == [0, 1, 3, COUNT_MAX] and encode(frames, "spikes").tolist() == [
        0,
        1,
        1,
        1,
    ]
    common = dict(size=16, timesteps=T, options={"samples_per_class": 1, "seed": 3}, cache_dir=tmp_path)
    spikes = FrameDataset("synthgesture", "test", **common)
    counts = FrameDataset("synthgesture", "test", encoding="counts", binning="count", **common)
    assert spikes.spikes.max() == 1 and counts.spikes.max() > 1
    # Counts binned by time carry the same events as the spikes, only graded.
    by_time = FrameDataset("synthgesture", "test", encoding="counts", **common)
    np.testing.assert_array_equal(by_time.spikes > 0, spikes.spikes > 0)


def _counts(n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(4)
    return (rng.poisson(0.6, (n, 2, 16, 16, T)) * (rng.random((n, 2, 16, 16, T)) < 0.5)).astype(np.uint8)


def _chip() -> torch.nn.Module:
    torch.manual_seed(1)
    cfg = tiny_config(T, encoding="counts")
    net = build_model(cfg, num_classes=3)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.from_numpy(_counts(4).astype(np.float32)))
    return fill_weight_range(chip_norms(net.eval()))[0]


def test_count_input_file_equals_torch_spike_for_spike(tmp_path):
    chip = _chip()
    path = write_netx(chip, tmp_path / "m.net", {"timesteps": T, "readout": "voltage", "encoding": "counts"})
    netfile = read_net(path)
    assert netfile.graded_input
    x = _counts()
    assert x.max() > 1
    records = assert_file_equals_chip(chip, netfile, x)
    assert records[0].spikes.sum() > 0
    # The same file read as binary spikes would be another network: counts matter.
    binary = read_net(write_netx(chip, tmp_path / "b.net", {"timesteps": T, "readout": "voltage"}))
    assert not np.array_equal(emu.emulate(binary, x, record="all")[0].spikes, records[0].spikes)
    with pytest.raises(RuntimeConfigError, match="event counts must lie in"):
        emu.emulate(netfile, x.astype(np.int32) * 300)


@pytest.mark.lava
def test_count_input_validates_on_the_lava_simulator(tmp_path):
    path = write_netx(_chip(), tmp_path / "m.net", {"timesteps": T, "readout": "voltage", "encoding": "counts"})
    agreement = validate_arrays(path, _counts(2))
    assert agreement.identical == 2 and agreement.first_mismatch is None
