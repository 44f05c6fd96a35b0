"""How fast does a DVS128 Gesture recording parse?

Writes a 2-million-event AEDAT 3.1 file (DVS128 polarity packets of 4096 events, a special-event
packet every 16 packets, one timestamp overflow half way) into a temp folder, then in one run
times the loader's vectorised parser (``parse_aedat31`` + ``make_events``: what
``DVSGesture.recording`` does) and a per-event ``struct`` loop (how common readers do it) on a
200k-event prefix, and prints events/s of both and their ratio.

    python bench/parse_aedat.py [--events 2000000]
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from chipnet.events import make_events
from chipnet.formats import parse_aedat31, read_bytes

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
PER_PACKET = 4096


def write_recording(path: Path, n_events: int, seed: int = 0) -> None:
    """A synthetic AEDAT 3.1 recording of ``n_events`` polarity events (vectorised writer)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(0, 3, n_events, dtype=np.int64)) + (1 << 31) - n_events // 2  # overflow mid-way
    data = (
        (rng.integers(0, 128, n_events) << 17)
        | (rng.integers(0, 128, n_events) << 2)
        | (rng.integers(0, 2, n_events) << 1)
        | 1
    )
    events = np.empty(n_events, dtype=[("data", "<u4"), ("ts", "<i4")])
    events["data"], events["ts"] = data, t & 0x7FFFFFFF
    with open(path, "wb") as fh:
        fh.write(HEADER)
        for k, start in enumerate(range(0, n_events, PER_PACKET)):
            if k % 16 == 0:
                fh.write(struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 1, 0))
            chunk = events[start : start + PER_PACKET]
            overflows = np.unique(t[start : start + PER_PACKET] >> 31)
            for ovf in overflows:  # a packet never straddles an overflow
                part = chunk[(t[start : start + PER_PACKET] >> 31) == ovf]
                fh.write(struct.pack("<hhiiiiii", 1, 1, 8, 4, int(ovf), len(part), len(part), len(part)))
                fh.write(part.tobytes())


def loop_parse(data: bytes) -> int:
    """Per-event reference reader (struct.unpack per event), for comparison."""
    pos = data.index(b"#!END-HEADER\r\n") + 14
    count = 0
    while pos < len(data):
        etype, _, size, _, overflow, capacity, number, _ = struct.unpack_from("<hhiiiiii", data, pos)
        pos += 28
        if etype == 1:
            for k in range(number):
                d, ts = struct.unpack_from("<Ii", data, pos + 8 * k)
                _x, _y, _p, _t = (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1, (overflow << 31) | ts
                count += d & 1
        pos += capacity * size
    return count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=2_000_000, help="polarity events in the generated recording")
    p.add_argument("--loop-events", type=int, default=200_000, help="events parsed by the per-event loop")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big.aedat", Path(tmp) / "small.aedat"
        write_recording(big, args.events)
        write_recording(small, args.loop_events)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            x, y, pol, t = parse_aedat31(read_bytes(big), str(big))
            ev = make_events(x, y, pol, t)
            best = min(best, time.perf_counter() - t0)
        assert len(ev) == args.events and ev["t"].max() >= 1 << 31
        t0 = time.perf_counter()
        n_loop = loop_parse(small.read_bytes())
        loop_s = time.perf_counter() - t0
        assert n_loop == args.loop_events
        size_mb = big.stat().st_size / 1e6
    fast, slow = args.events / best, n_loop / loop_s
    print(
        f"vectorised parse_aedat31 + make_events: {args.events} events ({size_mb:.1f} MB) in {best:.3f} s = {fast / 1e6:.1f} M events/s"
    )
    print(f"per-event struct loop:                  {n_loop} events in {loop_s:.3f} s = {slow / 1e6:.2f} M events/s")
    print(f"vectorised is {fast / slow:.0f}x faster")


if __name__ == "__main__":
    main()
