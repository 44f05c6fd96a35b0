"""Classify a live event stream (``python -m lava_runtime stream``): frames, decisions, latency.

Events from a source (:mod:`lava_runtime.event_sources`) are cut into frames of ``period_us`` on a
grid that starts at ``start_us`` or the first event (frame ``k`` holds ``[t0 + k·P, t0 + (k+1)·P)``) and each frame
is binned by the dataset pipeline's own code (:func:`chipnet.events.to_frames` with one
timestep over exactly that span, then :func:`~chipnet.events.encode`). A sample of ``T·P`` µs
binned by the dataset and the ``T`` frames that cover it are therefore the same tensor.

A decision runs its window of the last ``T`` frames from zero state (``reset="window"``): each
window is what training and ``run`` call a sample, so this is the mode that matches training.
``reset="never"`` (emu only) runs every frame once through a network that keeps its state
(:class:`lava_runtime.emu.ContinuousEmulator`) and decides on the outputs of the window's frames:
cheaper per decision, but the network then sees a history it never saw in training.
``every="frame"`` decides at every frame over a sliding window; ``every="window"`` every ``T``
frames over disjoint windows. The rule is ``run``'s (:func:`chipnet.decision.decide_output`).

A reader thread cuts frames into a bounded queue; the network takes every frame queued at once
(one batched backend call). A file read as fast as possible waits for the network; a live source
(or a file paced with ``realtime``) cannot wait, so a frame that finds the queue full is dropped
and counted, and a window never spans a dropped frame (it restarts after the gap).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from chipnet.decision import decide_output
from chipnet.errors import RuntimeConfigError, SmaLavaError
from chipnet.events import encode, to_frames
from chipnet.netmodel import NetFile
from lava_runtime.backends import REFERENCE, get_backend
from lava_runtime.emu import ContinuousEmulator
from lava_runtime.event_sources import EventSource, StreamSourceError, paced
from lava_runtime.runner import backend_layers, prepare_backend

EVERY = ("frame", "window")
RESETS = ("window", "never")


@dataclass
class Frame:
    """One binned frame: its index on the grid, its span (µs), its events and when its last event arrived."""

    index: int
    t_start: int
    t_end: int
    events: int
    spikes: np.ndarray  # [C, H, W] uint8, the network's input for one timestep
    arrived: float  # time.perf_counter() when the batch holding its last event was received
    output: np.ndarray | None = None  # the output layer at this frame, where a network without resets ran it


@dataclass
class SensorMap:
    """How source pixels reach the network: an optional crop, then the dataset's sum-pooling onto ``size``."""

    sensor: tuple[int, int]  # (width, height) the binning pools from (the crop's, if any)
    size: int
    crop: tuple[int, int, int, int] | None = None  # x, y, width, height on the source


def sensor_map(
    source_name: str,
    resolution: tuple[int, int],
    trained: tuple[int, int] | None,
    size: int,
    crop: tuple[int, int, int, int] | None = None,
    downsample: bool = False,
) -> SensorMap:
    """The mapping, or a one-line error when the source's sensor is not the one the network was trained on.

    ``trained`` is the training dataset's sensor (None if unknown). Without ``downsample`` the
    (cropped) sensor must equal it, so frames are binned exactly as training binned its samples.
    """
    if crop is not None:
        x, y, w, h = crop
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > resolution[0] or y + h > resolution[1]:
            raise RuntimeConfigError(
                f"{source_name}: --crop {x},{y},{w},{h} does not fit its {resolution[0]}×{resolution[1]} sensor"
            )
    sensor = (crop[2], crop[3]) if crop is not None else tuple(resolution)
    if not downsample and sensor != trained:
        what = "an unknown sensor" if trained is None else f"a {trained[0]}×{trained[1]} sensor"
        raise RuntimeConfigError(
            f"{source_name}: {sensor[0]}×{sensor[1]} events{' (cropped)' if crop else ''}, but the network was "
            f"trained on {what}; pass --crop X,Y,W,H to cut that region out or --downsample to pool "
            f"the whole sensor onto {size}×{size}"
        )
    return SensorMap(sensor, size, crop)


class FrameCutter:
    """Cuts time-sorted event batches into frames of ``period_us`` on a grid from ``start_us`` (default: the first event)."""

    def __init__(self, mapping: SensorMap, period_us: int, encoding: str, start_us: int | None = None) -> None:
        self.mapping, self.period, self.encoding = mapping, int(period_us), encoding
        self.origin: int | None = start_us  # the grid's origin; events before it are left out
        self.next_index = 0
        self.pending: list[np.ndarray] = []  # events of frame ``next_index`` so far
        self.pending_arrived = 0.0
        self.events = 0

    def _map(self, events: np.ndarray) -> np.ndarray:
        crop = self.mapping.crop
        if crop is None:
            return events
        x, y, w, h = crop
        keep = (events["x"] >= x) & (events["x"] < x + w) & (events["y"] >= y) & (events["y"] < y + h)
        out = events[keep].copy()
        out["x"] -= x
        out["y"] -= y
        return out

    def _frame(self, chunks: list[np.ndarray], arrived: float) -> Frame:
        k = self.next_index
        start = self.origin + k * self.period
        w, h = self.mapping.sensor
        if chunks:
            ev = np.concatenate(chunks)
            binned = encode(to_frames(ev, (w, h, 2), self.mapping.size, 1, start, start + self.period), self.encoding)
        else:
            binned = np.zeros((2, self.mapping.size, self.mapping.size, 1), np.uint8)
        self.next_index += 1
        return Frame(k, start, start + self.period, sum(len(c) for c in chunks), binned[..., 0], arrived)

    def push(self, events: np.ndarray, arrived: float) -> list[Frame]:
        """The frames this batch completes (a frame is complete once an event at or after its end arrives)."""
        self.events += len(events)
        events = self._map(events)
        if not len(events):
            return []
        if self.origin is None:
            self.origin = int(events["t"][0])
        events = events[events["t"] >= self.origin]
        if not len(events):
            return []
        index = (events["t"].astype(np.int64) - self.origin) // self.period
        if index[0] < self.next_index:  # a source may repeat a timestamp across batches, never go back a frame
            raise StreamSourceError(f"events went back in time to {int(events['t'][0])} µs")
        frames = []
        bounds = np.flatnonzero(np.diff(index)) + 1
        for part in np.split(np.arange(len(index)), bounds):
            k = int(index[part[0]])
            while self.next_index < k:  # the pending frame, then any empty frames in between, are complete
                frames.append(self._frame(self.pending, self.pending_arrived))
                self.pending = []
            self.pending.append(events[part])
            self.pending_arrived = arrived
        return frames

    def flush(self) -> list[Frame]:
        """The last frame at the end of the stream (if it holds events)."""
        if not self.pending:
            return []
        frame = self._frame(self.pending, self.pending_arrived)
        self.pending = []
        return [frame]


@dataclass
class Stats:
    """What the stream did, for the end summary."""

    events: int = 0
    frames: int = 0
    dropped: int = 0
    decisions: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_t: int | None = None
    last_t: int | None = None
    wall_s: float = 0.0
    timeline: list[dict[str, Any]] = field(default_factory=list)  # per frame: index, t, events
    error: str | None = None
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM, the way a live stream ends
    filtered_out: int | None = None  # events the noise filter removed (None: no filter)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        pct = {f"p{q}": (float(np.percentile(lat, q)) if len(lat) else None) for q in (50, 95, 99)}
        span_s = (self.last_t - self.first_t) / 1e6 if self.first_t is not None else 0.0
        return {
            "events": self.events,
            "events_filtered_out": self.filtered_out,
            "frames": self.frames,
            "decisions": self.decisions,
            "dropped_frames": self.dropped,
            "latency_ms": pct,
            "stream_s": span_s,
            "wall_s": self.wall_s,
            # Stream time per wall time: above 1 the network keeps up with a live sensor.
            "realtime_factor": span_s / self.wall_s if self.wall_s > 0 else None,
            "error": self.error,
            "interrupted": self.interrupted,
        }


class _FrameQueue:
    """A bounded frame queue between the reader thread and the network."""

    def __init__(self, capacity: int, block: bool) -> None:
        self.capacity, self.block = capacity, block
        self.frames: deque[Frame] = deque()
        self.cond = threading.Condition()
        self.done = False
        self.error: str | None = None
        self.dropped = 0
        self.stop = False

    def put(self, frame: Frame) -> None:
        with self.cond:
            while self.block and len(self.frames) >= self.capacity and not self.stop:
                self.cond.wait()
            if len(self.frames) >= self.capacity:
                self.dropped += 1  # the network is behind a source that cannot wait
                return
            self.frames.append(frame)
            self.cond.notify_all()

    def finish(self, error: str | None) -> None:
        with self.cond:
            self.done, self.error = True, error
            self.cond.notify_all()

    def take(self) -> tuple[list[Frame], bool]:
        """Every queued frame (waiting for one), and whether the source has ended."""
        with self.cond:
            while not self.frames and not self.done:
                self.cond.wait()
            frames = list(self.frames)
            self.frames.clear()
            self.cond.notify_all()
            return frames, self.done and not frames


def _read(source: EventSource, cutter: FrameCutter, queue: _FrameQueue, realtime: bool) -> None:
    """The reader thread: source → frames → queue; the source's failure ends it with its message."""
    error = None
    try:
        batches = paced(iter(source)) if realtime and not source.live else iter(source)
        for events in batches:
            if queue.stop:
                break
            for frame in cutter.push(events, time.perf_counter()):
                queue.put(frame)
        for frame in cutter.flush():
            queue.put(frame)
    except SmaLavaError as e:
        error = str(e) if str(e).startswith(source.name) else f"{source.name}: {e}"
    except Exception as e:  # noqa: BLE001 - the reader must always end the stream with one line
        error = f"{source.name}: {type(e).__name__}: {e}"
    queue.finish(error)


def ground_truth(rows: np.ndarray | None, t_start: int, t_end: int) -> int | None:
    """The label of a labels-CSV row (label, start, end) holding the window ``[t_start, t_end)``, else None."""
    if rows is None:
        return None
    for label, start, end in rows:
        if start <= t_start and t_end <= end:
            return int(label)
    return None


def _decide(net: NetFile, backend: str, windows: list[list[Frame]]) -> tuple[np.ndarray, np.ndarray]:
    """Predictions ``[B]`` and confidences ``[B, classes]`` (spike counts, or final voltages) of the windows.

    Windows whose frames already went through a network without resets are decided on those outputs;
    otherwise each window runs from zero state on ``backend`` (all of them in one call).
    """
    if windows[0][0].output is not None:
        out = np.stack([np.stack([f.output for f in w], axis=-1) for w in windows])
    else:
        x = np.stack([np.stack([f.spikes for f in w], axis=-1) for w in windows])  # [B, C, H, W, T]
        records = backend_layers(net, x, backend)
        out = records[-1].voltage if records[-1].voltage is not None else records[-1].spikes
    flat = out.reshape(len(windows), -1, out.shape[-1])
    confidence = flat[..., -1] if net.readout == "voltage" else (flat != 0).sum(-1)
    return decide_output(out, net.readout).predictions, confidence


def run_stream(
    net: NetFile,
    source: EventSource,
    mapping: SensorMap,
    period_us: int,
    backend: str = "emu",
    every: str = "window",
    reset: str = "window",
    start_us: int | None = None,
    realtime: bool = False,
    max_queue: int | None = None,
    labels: np.ndarray | None = None,
    out: IO[str] | None = None,
    echo: IO[str] | None = sys.stdout,
) -> Stats:
    """Classify ``source`` until it ends or fails; every decision is written to ``out`` (and ``echo``) as it comes.

    A source failure ends the stream with ``Stats.error`` set, Ctrl-C or SIGTERM with
    ``Stats.interrupted`` (the decisions so far are written either way).
    """
    if every not in EVERY:
        raise RuntimeConfigError(f"every must be one of {EVERY}, got {every!r}")
    if reset not in RESETS:
        raise RuntimeConfigError(f"reset must be one of {RESETS}, got {reset!r}")
    continuous = None
    if reset == "never":
        if get_backend(backend) is not REFERENCE:
            raise RuntimeConfigError("--reset never runs on emu only (NetX resets the neurons every T steps)")
        continuous = ContinuousEmulator(net)
    timesteps = int(net.timesteps)
    prepare_backend(backend)
    classes = list(net.metadata.get("classes") or [])
    cutter = FrameCutter(mapping, period_us, net.metadata.get("encoding", "spikes"), start_us)
    queue = _FrameQueue(max_queue or 4 * timesteps, block=not (source.live or realtime))
    stats = Stats()
    reader = threading.Thread(target=_read, args=(source, cutter, queue, realtime), daemon=True, name="stream-reader")
    t0 = time.perf_counter()
    reader.start()
    window: deque[Frame] = deque(maxlen=timesteps)
    try:
        while True:
            frames, ended = queue.take()
            if ended:
                break
            if continuous is not None:  # every frame, in order, through the network that keeps its state
                outputs = continuous.step(np.stack([f.spikes for f in frames], axis=-1))
                for i, frame in enumerate(frames):
                    frame.output = outputs[..., i]
            due: list[list[Frame]] = []
            for frame in frames:
                stats.frames += 1
                stats.timeline.append(
                    {"frame": frame.index, "t_us": frame.t_start, "t_end_us": frame.t_end, "events": frame.events}
                )
                if stats.first_t is None:
                    stats.first_t = frame.t_start
                stats.last_t = frame.t_end
                if window and frame.index != window[-1].index + 1:
                    window.clear()  # frames were dropped: a window holds T consecutive frames
                window.append(frame)
                if len(window) == timesteps:
                    due.append(list(window))
                    if every == "window":
                        window.clear()
            if not due:
                continue
            predictions, confidence = _decide(net, backend, due)
            decided = time.perf_counter()
            for frames_, pred, conf in zip(due, predictions, confidence):
                latency = (decided - frames_[-1].arrived) * 1e3
                stats.decisions += 1
                stats.latencies_ms.append(latency)
                line = {
                    "t_start_us": frames_[0].t_start,
                    "t_end_us": frames_[-1].t_end,
                    "frame": frames_[-1].index,
                    "class": int(pred),
                    "label": classes[pred] if 0 <= pred < len(classes) else None,
                    "spike_counts" if net.readout == "spikes" else "voltages": [
                        int(c) if net.readout == "spikes" else float(c) for c in conf
                    ],
                    "latency_ms": round(latency, 3),
                }
                truth = ground_truth(labels, frames_[0].t_start, frames_[-1].t_end)
                if labels is not None:
                    line["truth"] = truth
                text = json.dumps(line)
                for stream in (out, echo):
                    if stream is not None:
                        stream.write(text + "\n")
                        stream.flush()  # written as it comes: a failure later keeps it
                _mark(stats.timeline, frames_[-1].index, int(pred), truth)
    except KeyboardInterrupt:
        stats.interrupted = True  # how a camera's stream is stopped: the summary still comes
    finally:
        queue.stop = True
        with queue.cond:
            queue.cond.notify_all()
        stats.wall_s = time.perf_counter() - t0
        stats.events = cutter.events
        stats.dropped = queue.dropped
    reader.join(timeout=5)
    stats.error = queue.error
    if source._filter is not None:
        stats.filtered_out = source.incoming - stats.events
    return stats


def _mark(timeline: list[dict[str, Any]], index: int, pred: int, truth: int | None) -> None:
    """Note a decision on its frame's timeline row (searched from the end: it is one of the latest)."""
    for row in reversed(timeline):
        if row["frame"] == index:
            row["class"] = pred
            if truth is not None:
                row["truth"] = truth
            return


def trained_sensor(net: NetFile) -> tuple[int, int] | None:
    """The ``(width, height)`` of the sensor the network's dataset was recorded with (None if unknown)."""
    from train.data import DATASETS

    cls = DATASETS.get(net.metadata.get("dataset") or "")
    size = getattr(cls, "sensor_size", None)
    return (int(size[0]), int(size[1])) if size is not None else None


def default_period_us(net: NetFile) -> int | None:
    """Training's frame period: a fixed-length dataset's sample duration over T (None if samples vary)."""
    from train.data import DATASETS

    cls = DATASETS.get(net.metadata.get("dataset") or "")
    duration = getattr(cls, "duration_us", None)
    return int(duration) // int(net.timesteps) if duration and net.timesteps else None


def write_summary(stats: Stats, path: str | Path) -> None:
    """The end summary as JSON (atomically)."""
    from chipnet.atomic import atomic_write_json

    atomic_write_json(path, stats.summary())
