"""Event streams for the stream tests: AEDAT4 files and a DV network server written by dv-processing itself,
and AEDAT 3.1 files.

Run as a script it is the network server: ``python tests/dvwriter.py PORT EVENTS.npy [STOP_AFTER]``
listens on 127.0.0.1:PORT (loopback only), prints ``listening``, waits (at most 30 s) for one
client, sends the events in batches and exits without closing politely (``STOP_AFTER`` events,
if given, are all it sends: a sensor that disconnects mid-way). It runs in its own process:
dv-processing's writer cannot be destroyed while a reader of the same process waits on it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from chipnet.formats import AEDAT31_PACKET

BATCH = 2_000  # events per packet, about what a camera sends every few milliseconds


def event_store(events: np.ndarray):
    """A ``dv.EventStore`` holding ``events`` (x, y, p, t fields)."""
    import dv_processing as dv

    store = dv.EventStore()
    for x, y, p, t in zip(events["x"].tolist(), events["y"].tolist(), events["p"].tolist(), events["t"].tolist()):
        store.push_back(t, x, y, bool(p))
    return store


def write_aedat4(path: str | Path, events: np.ndarray, resolution: tuple[int, int] = (128, 128)) -> None:
    """``events`` into an AEDAT4 file with dv-processing's ``MonoCameraWriter``."""
    import dv_processing as dv

    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("DVS128", resolution))
    for start in range(0, len(events), BATCH):
        writer.writeEvents(event_store(events[start : start + BATCH]))
    del writer  # closes the file (writes its index)


def write_aedat31(path: str | Path, events: np.ndarray) -> None:
    """``events`` as a DVS128 AEDAT 3.1 file (jAER/cAER's format; dv-processing writes AEDAT4 only)."""
    data = (
        1
        | (events["p"].astype(np.uint32) << 1)
        | (events["y"].astype(np.uint32) << 2)
        | (events["x"].astype(np.uint32) << 17)
    )
    t = events["t"].astype(np.int64)
    chunks = [b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"]
    for start in range(0, len(events), BATCH):
        part = slice(start, start + BATCH)
        body = np.empty(len(data[part]), dtype=[("data", "<u4"), ("ts", "<i4")])
        body["data"], body["ts"] = data[part], t[part] & 0x7FFFFFFF
        overflow = int(t[part][0]) >> 31
        if int(t[part][-1]) >> 31 != overflow:
            raise ValueError("a packet may not cross a timestamp overflow")
        header = AEDAT31_PACKET.pack(1, 1, 8, 4, overflow, len(body), len(body), len(body))
        chunks += [header, body.tobytes()]
    Path(path).write_bytes(b"".join(chunks))


def serve(port: int, events: np.ndarray, stop_after: int | None = None) -> None:
    """Send ``events`` to the first client of a DV network event stream on 127.0.0.1:``port``."""
    import dv_processing as dv

    stream = dv.io.Stream.EventStream(0, "events", "DVS128", (128, 128))
    writer = dv.io.NetworkWriter("127.0.0.1", port, stream)
    print("listening", flush=True)
    deadline = time.monotonic() + 30
    while writer.getClientCount() == 0:
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.01)
    end = len(events) if stop_after is None else stop_after
    for start in range(0, end, BATCH):
        writer.writeEvents(event_store(events[start : min(start + BATCH, end)]))
    while writer.getQueuedPacketCount() > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let the last packets leave the socket
    os._exit(0)  # drop the connection (the destructor could wait on the client)


if __name__ == "__main__":
    serve(int(sys.argv[1]), np.load(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
