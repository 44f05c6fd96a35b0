"""Where a stream's events come from: AEDAT4 files, AEDAT 2.0/3.1 files, DV network streams, cameras.

Every source yields time-sorted event batches as :data:`chipnet.events.EVENT_DTYPE` arrays
(``x, y, p, t``, ``t`` in µs) and knows its sensor's ``(width, height)``. AEDAT4, network streams
and cameras are read by dv-processing (iniVation's own library, the one DV uses); AEDAT 2.0/3.1
by the project's readers in :mod:`chipnet.formats`. A source that fails mid-way (truncated
file, dropped connection) raises :class:`StreamSourceError` naming it: the stream keeps what it
has already decided and reports that one line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from chipnet.errors import DatasetError, RuntimeConfigError
from chipnet.events import make_events
from chipnet.formats import decode_dvs128, parse_aedat2, parse_aedat31, read_bytes

AEDAT_CHUNK = 65_536  # events per batch when a whole AEDAT 2.0/3.1 file is parsed at once
NETWORK_IDLE_S = 0.002  # poll interval of a network stream or camera with no new batch


class StreamSourceError(RuntimeConfigError):
    """A source cannot be opened or stopped delivering events (the message names it)."""


def from_dv(batch: np.ndarray) -> np.ndarray:
    """dv-processing's ``EventStore.numpy()`` (timestamp, x, y, polarity) as an :data:`EVENT_DTYPE` array."""
    return make_events(batch["x"], batch["y"], batch["polarity"], batch["timestamp"])


class EventSource:
    """Event batches from one source: ``for events in source: ...``; ``resolution`` is ``(width, height)``."""

    name: str
    resolution: tuple[int, int]
    live: bool  # a sensor or network stream: events come at their own pace and cannot wait for the network
    incoming = 0  # events the source delivered, before any noise filter
    _filter = None

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def set_noise_filter(self, duration_us: int) -> None:
        """Keep only events that dv-processing's ``BackgroundActivityNoiseFilter`` passes (support within ``duration_us``)."""
        raise StreamSourceError(f"{self.name}: --noise-filter works on AEDAT4, network and camera sources")

    def _events(self, store) -> np.ndarray:
        """A dv ``EventStore`` as events, through the noise filter where one is set."""
        self.incoming += store.size()
        if self._filter is not None:
            self._filter.accept(store)
            store = self._filter.generateEvents()
        return from_dv(store.numpy())


class _DvSource(EventSource):
    """A source dv-processing reads (its batches are ``dv.EventStore``)."""

    def set_noise_filter(self, duration_us: int) -> None:
        import datetime

        import dv_processing as dv

        self._filter = dv.noise.BackgroundActivityNoiseFilter(
            self.resolution, backgroundActivityDuration=datetime.timedelta(microseconds=duration_us)
        )

    def _poll(self, reader: Any, failed: str, closed: str) -> Iterator[np.ndarray]:
        """Batches of a live dv-processing reader (network stream or camera) until it stops; then one error line."""
        while True:
            try:
                batch = reader.getNextEventBatch()
            except Exception as e:  # the server or camera went away, or sent garbage
                raise StreamSourceError(f"{self.name}: {failed} ({_text(e)})") from None
            if batch is None:
                if not reader.isRunning():
                    raise StreamSourceError(f"{self.name}: {closed}")
                time.sleep(NETWORK_IDLE_S)
            elif batch.size():
                yield self._events(batch)


class DvRecording(_DvSource):
    """An AEDAT4 file through ``dv.io.MonoCameraRecording``."""

    live = False

    def __init__(self, path: str | Path) -> None:
        import dv_processing as dv

        self.name = str(path)
        if not Path(path).is_file():
            raise StreamSourceError(f"{path}: file not found")
        try:
            self._reader = dv.io.MonoCameraRecording(str(path))
        except Exception as e:  # dv-processing raises plain RuntimeErrors for a bad file
            raise StreamSourceError(f"{path}: not a readable AEDAT4 recording ({_text(e)})") from None
        if not self._reader.isEventStreamAvailable():
            raise StreamSourceError(f"{path}: the recording has no event stream")
        self.resolution = tuple(int(v) for v in self._reader.getEventResolution())

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            try:
                batch = self._reader.getNextEventBatch()
            except Exception as e:
                raise StreamSourceError(f"{self.name}: stopped after a bad packet ({_text(e)}; truncated?)") from None
            if batch is None:
                return
            if batch.size():
                yield self._events(batch)


class DvNetwork(_DvSource):
    """A DV network event stream ``tcp://host:port`` through ``dv.io.NetworkReader``."""

    live = True

    def __init__(self, host: str, port: int) -> None:
        import dv_processing as dv

        self.name = f"tcp://{host}:{port}"
        try:
            self._reader = dv.io.NetworkReader(host, port)
        except Exception as e:
            raise StreamSourceError(f"{self.name}: cannot connect ({_text(e)})") from None
        if not self._reader.isEventStreamAvailable():
            raise StreamSourceError(f"{self.name}: the server sends no event stream")
        self.resolution = tuple(int(v) for v in self._reader.getEventResolution())

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._poll(self._reader, "disconnected", "disconnected (the server closed the stream)")


class DvCamera(_DvSource):
    """A camera opened by ``dv.io.camera.open`` (the first one found, or the one with this serial number)."""

    live = True

    def __init__(self, serial: str = "") -> None:
        import dv_processing as dv

        self.name = f"camera:{serial}" if serial else "camera"
        try:
            if not dv.io.camera.discover():  # open() alone fails with a bare index error
                raise StreamSourceError(f"{self.name}: no camera found (dv-processing sees no iniVation USB camera)")
            self._camera = dv.io.camera.open(serial) if serial else dv.io.camera.open()
        except StreamSourceError:
            raise
        except Exception as e:
            raise StreamSourceError(f"{self.name}: cannot open ({_text(e)})") from None
        resolution = self._camera.getEventResolution()
        if resolution is None:
            raise StreamSourceError(f"{self.name}: the camera has no event output")
        self.resolution = tuple(int(v) for v in resolution)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._poll(self._camera, "stopped", "disconnected")


class AedatFile(EventSource):
    """A DVS128 AEDAT 2.0 (jAER) or 3.1 file, parsed whole by :mod:`chipnet.formats`, yielded in chunks."""

    live = False

    def __init__(self, path: str | Path, resolution: tuple[int, int] = (128, 128)) -> None:
        self.name = str(path)
        try:
            data = read_bytes(path)
            if data.startswith(b"#!AER-DAT3"):
                x, y, p, t = parse_aedat31(data, self.name, chip="DVS128")
            elif data.startswith(b"#!AER-DAT2"):
                address, t = parse_aedat2(data, self.name, chip="DVS128")
                x, y, p, retina = decode_dvs128(address)
                x, y, p, t = x[retina], y[retina], p[retina], t[retina]
            else:
                raise StreamSourceError(f"{path}: not an AEDAT 2.0, 3.1 or 4 file (no #!AER-DAT header)")
        except DatasetError as e:
            raise StreamSourceError(str(e)) from None
        # Neither format records the resolution: both readers decode DVS128 addresses (and refuse a file
        # whose header names another chip).
        self.resolution = resolution
        self._all = make_events(x, y, p, t)

    def __iter__(self) -> Iterator[np.ndarray]:
        self.incoming = len(self._all)
        for start in range(0, len(self._all), AEDAT_CHUNK):
            yield self._all[start : start + AEDAT_CHUNK]


def open_source(spec: str) -> EventSource:
    """The source ``spec`` names: ``tcp://host:port``, ``camera`` / ``camera:SERIAL``, or a file path."""
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://") :].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise StreamSourceError(f"{spec}: a network stream is tcp://HOST:PORT")
        return DvNetwork(host, int(port))
    if spec == "camera" or spec.startswith("camera:"):
        return DvCamera(spec.partition(":")[2])
    path = Path(spec)
    if not path.is_file():
        raise StreamSourceError(f"{spec}: file not found (sources: a file, tcp://HOST:PORT, camera[:SERIAL])")
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"#!AER-DAT4"):
        return DvRecording(path)
    return AedatFile(path)


def paced(batches: Iterator[np.ndarray], speed: float = 1.0) -> Iterator[np.ndarray]:
    """``batches`` released at their recorded pace (``--realtime``): batch ``i`` waits until its last event's time."""
    t_first = wall_first = None
    for events in batches:
        if len(events):
            if t_first is None:
                t_first, wall_first = int(events["t"][0]), time.perf_counter()
            due = wall_first + (int(events["t"][-1]) - t_first) / 1e6 / speed
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield events


def _text(e: BaseException) -> str:
    """An exception's message on one line, without boost's source location (``[system:111 at /vcpkg/...]``)."""
    text = re.sub(r"\s*\[system:\d+ at [^\]]*\]", "", " ".join(str(e).split()))
    return text or type(e).__name__
