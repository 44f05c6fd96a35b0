"""Can a network keep up with a live sensor? Real-time factor and decision latency of ``stream`` on ``emu``.

    python bench/stream.py --net runs/demo/model.net --net runs/dvsgesture-small-s0/model.net

Writes ``--samples`` synthgesture test samples (128×128 sensor, 1 s each) back to back into an
AEDAT4 file with dv-processing's writer, then streams it through each network on ``emu``:

- as fast as possible (``stream`` on a file without ``--realtime``): the real-time factor, stream
  time over wall time (above 1 the network keeps up with the sensor);
- paced at the recorded speed (``--realtime``), as a camera would deliver it: decision latency
  p50/p95/p99 (the frame's last event to its decision) and the frames dropped because the network
  was behind,

for decisions every T frames (``--every window``) and at every frame (``--every frame``, T times
the work). The numbers are this machine's: run it on the machine you deploy on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's packages, and the AEDAT4 writer the tests use

from dvwriter import write_aedat4  # noqa: E402

from chipnet.netfile import read_net  # noqa: E402
from lava_runtime.event_sources import open_source  # noqa: E402
from lava_runtime.stream import default_period_us, run_stream, sensor_map, trained_sensor  # noqa: E402
from train.data.synthgesture import SynthGesture  # noqa: E402


def gestures(path: Path, samples: int) -> None:
    """``samples`` synthgesture test samples back to back in an AEDAT4 file."""
    data = SynthGesture("test", samples_per_class=max(1, -(-samples // 11)), seed=0)
    parts = []
    for i in range(samples):
        events, _ = data[i]
        events = events.copy()
        events["t"] += i * data.duration_us
        parts.append(events)
    write_aedat4(path, np.concatenate(parts))


def measure(net_path: str, recording: Path, every: str, realtime: bool) -> dict:
    net = read_net(net_path)
    source = open_source(str(recording))
    mapping = sensor_map(source.name, source.resolution, trained_sensor(net), int(net.input_shape[-1]))
    period = default_period_us(net) or 1_000_000 // int(net.timesteps)
    stats = run_stream(net, source, mapping, period, "emu", every=every, realtime=realtime, echo=None)
    return stats.summary()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", action="append", required=True, help="exported network (repeat for several)")
    p.add_argument("--samples", type=int, default=8, help="1 s synthgesture samples in the stream")
    p.add_argument("--every", nargs="+", default=["window", "frame"], choices=["window", "frame"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "gestures.aedat4"
        gestures(recording, args.samples)
        print(f"{args.samples} s of synthgesture events (128×128) on emu; latency and drops from --realtime")
        print(
            f"{'network':44s} {'input':>10s} {'every':>6s} {'RTF':>8s} {'p50 ms':>8s} {'p95 ms':>8s} "
            f"{'p99 ms':>8s} {'dropped':>8s} {'decisions':>9s}"
        )
        for net_path in args.net:
            net = read_net(net_path)
            shape = "×".join(str(v) for v in net.input_shape[1:]) + f" T{net.timesteps}"
            for every in args.every:
                fast = measure(net_path, recording, every, realtime=False)
                paced = measure(net_path, recording, every, realtime=True)
                lat = paced["latency_ms"]
                cells = [f"{lat[k]:8.1f}" if lat[k] is not None else f"{'n/a':>8s}" for k in ("p50", "p95", "p99")]
                print(
                    f"{net_path[-44:]:44s} {shape:>10s} {every:>6s} {fast['realtime_factor']:8.2f} {' '.join(cells)} "
                    f"{paced['dropped_frames']:8d} {paced['decisions']:9d}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
