import numpy as np

from chipnet.events import make_events, to_frames, to_spikes


def test_to_frames_counts_every_event_in_its_bin():
    # x, y, p, t on a 4×4 sensor, binned to 2×2 and 2 time bins over [0, 100).
    ev = make_events(
        x=np.array([0, 1, 3, 2, 0]),
        y=np.array([0, 0, 3, 1, 3]),
        p=np.array([1, 1, 0, 1, 0]),
        t=np.array([0, 10, 60, 99, 50]),
    )
    f = to_frames(ev, (4, 4, 2), size=2, timesteps=2, t_start=0, t_end=100)
    assert f.shape == (2, 2, 2, 2)
    assert f.sum() == 5
    assert f[1, 0, 0, 0] == 2  # two ON events in the top-left block, first half
    assert f[0, 1, 1, 1] == 1  # OFF at (3, 3), t=60
    assert f[1, 0, 1, 1] == 1  # ON at (2, 1), t=99
    assert f[0, 1, 0, 1] == 1  # OFF at (0, 3), t=50
    assert to_spikes(f).max() == 1 and to_spikes(f).sum() == 4


def test_to_frames_drops_events_outside_window_and_handles_empty():
    ev = make_events(np.array([0, 0]), np.array([0, 0]), np.array([1, 1]), np.array([5, 500]))
    f = to_frames(ev, (4, 4, 2), size=4, timesteps=4, t_start=0, t_end=100)
    assert f.sum() == 1
    empty = to_frames(ev[:0], (4, 4, 2), size=4, timesteps=4)
    assert empty.shape == (2, 4, 4, 4) and empty.sum() == 0


def test_make_events_sorts_by_time():
    ev = make_events(np.array([1, 2, 3]), np.array([0, 0, 0]), np.array([0, 1, 0]), np.array([30, 10, 20]))
    assert ev["t"].tolist() == [10, 20, 30]
    assert ev["x"].tolist() == [2, 3, 1]
