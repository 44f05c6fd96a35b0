"""Run a graph on a backend and collect every layer's activity, aligned to the torch timeline."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import AbstractLoihiRunCfg

import lava_runtime.lava_start  # noqa: F401  (before any Lava import: see its doc)
from chipnet.errors import RuntimeConfigError
from chipnet.netfile import read_metadata, read_net
from chipnet.netmodel import ConvLayer, DenseLayer, NetFile
from chipnet.progress import progress_bar
from lava_runtime.backends import get_backend, run_on_loihi2
from lava_runtime.counting import synops_from_spikes
from lava_runtime.graph import Graph, build_graph
from lava_runtime.records import LayerRecord, local_windows, stream_steps, to_lava_order


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGTERM (treated like Ctrl-C so that cleanup runs)."""


_signalled = threading.Event()  # a SIGTERM arrived while stop_on_signals was active


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM into an exception in the main thread so ``finally`` blocks stop Lava's runtime.

    Python drops an exception raised where it cannot propagate (e.g. in the at-fork hook that
    runs while Lava forks its workers), so the handler also sets a flag that
    :func:`raise_if_signalled` checks once the run returns.
    """

    def handler(signum: int, frame: object) -> None:
        _signalled.set()
        # Inside fork's lock hooks the exception would be printed and dropped: leave it to the flag.
        if frame is None or not getattr(frame, "f_code", None) or "logging" not in frame.f_code.co_filename:
            raise Interrupted(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals cannot be handled here, nothing to restore
        yield
        return
    _signalled.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def raise_if_signalled() -> None:
    """Raise :class:`Interrupted` if a SIGTERM was handled but its exception got lost."""
    if _signalled.is_set():
        raise Interrupted("signal 15")


class LavaRunError(RuntimeConfigError):
    """A Lava process failed during the run (the message carries its error)."""


def _actors(net: AbstractProcess) -> list:
    """Lava's worker processes of a started run (private runtime API; empty when there is none)."""
    runtime = getattr(net, "runtime", None)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infra, "actors", None) or [])


def _alive(actor: object) -> bool:
    try:
        return actor.is_alive()
    except ValueError:  # already joined and closed
        return False


def _kill(actors: list, reap: bool = True) -> None:
    """SIGKILL every worker still alive and, with ``reap``, wait for it."""
    for actor in actors:
        if _alive(actor):
            with contextlib.suppress(Exception):
                actor.kill()
    for actor in actors if reap else []:
        with contextlib.suppress(Exception):
            actor.join()


class _Supervisor(threading.Thread):
    """Kills Lava's workers when one of them ends mid-run.

    A Lava worker whose process model raises exits, but its neighbours stay blocked on their
    ports, and Lava's runtime waits for all of them forever. Workers only end when stopped, so
    an ended worker during a run means failure: killing the rest lets Lava's ``run`` return
    with its error.
    """

    def __init__(self, net: AbstractProcess) -> None:
        super().__init__(daemon=True, name="lava-supervisor")
        self.net = net
        self.done = threading.Event()
        self.failure: str | None = None

    def run(self) -> None:
        while not self.done.wait(0.1):
            actors = _actors(self.net)
            if any(not _alive(a) for a in actors):
                # The runtime service ends too when it hears of the error: wait briefly for the
                # failed model's own exception to name the cause.
                for _ in range(20):
                    self.failure = _failure_text(actors)
                    if self.failure or self.done.wait(0.05):
                        break
                self.failure = self.failure or "a Lava worker process ended unexpectedly"
                _kill(actors, reap=False)  # Lava's runtime reaps them itself (two joins would race)
                return


def _failure_text(actors: list) -> str | None:
    """The first exception a Lava worker sent back, as text."""
    for actor in actors:
        with contextlib.suppress(Exception):
            exc = actor.exception
            if exc:
                return f"{type(exc[0]).__name__}: {exc[0]}"
    return None


def _shutdown(net: AbstractProcess, timeout: float = 20.0) -> None:
    """Stop Lava's runtime; where it does not stop in ``timeout`` s, kill its workers and shared memory."""
    actors = _actors(net)

    def stop() -> None:
        with contextlib.suppress(Exception):  # a half-dead runtime may fail to stop: the kill below follows
            net.stop()

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    stopper.join(timeout)
    _kill(actors)
    infra = getattr(getattr(net, "runtime", None), "_messaging_infrastructure", None)
    smm = getattr(infra, "_smm", None)
    if smm is not None:
        with contextlib.suppress(Exception):
            smm.shutdown()


def run_graph(
    graph: Graph, cfg: AbstractLoihiRunCfg, samples: int, timesteps: int, progress: bool = False
) -> tuple[list[np.ndarray | None], tuple[np.ndarray, np.ndarray] | None, np.ndarray | None]:
    """Run ``graph`` over all samples; return each sink's spikes, the counter's ``(counts, synops)``
    and the probed output voltage ``[*shape, steps]`` (None without a probe).

    Lava's runtime is always stopped. The stream runs ``graph.num_steps`` steps: the samples'
    and, after the last one, the steps it needs to reach the end of the last layer.

    The run advances in chunks of whole samples so a progress bar can follow it; Lava keeps its
    state between ``run`` calls, so chunking does not change a single spike. Errors, Ctrl-C and
    SIGTERM all end with every Lava worker process gone.
    """
    progress = progress and sys.stderr.isatty()  # chunking costs a little: only where someone watches
    chunk = max(1, math.ceil(samples / 50)) if progress else samples
    supervisor = _Supervisor(graph.net)
    with stop_on_signals():
        try:
            supervisor.start()
            with progress_bar(total=samples, desc="lava run", unit="sample", enabled=progress, leave=False) as bar:
                done = 0
                while done < samples:
                    step = min(chunk, samples - done)
                    steps = step * timesteps + (graph.num_steps - samples * timesteps if done + step == samples else 0)
                    try:
                        graph.net.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
                    except Exception as e:  # Lava reports a failed worker as RuntimeError or worse
                        supervisor.done.set()
                        supervisor.join()
                        cause = _failure_text(_actors(graph.net)) or supervisor.failure or e
                        raise LavaRunError(f"the Lava run failed: {cause}") from None
                    done += step
                    bar.update(step)
                    raise_if_signalled()
            supervisor.done.set()
            supervisor.join()
            if supervisor.failure:
                raise LavaRunError(f"the Lava run failed: {supervisor.failure}")
            spikes = [None if sink is None else sink.data.get() for sink in graph.sinks]
            counted = (graph.counter.counts.get(), graph.counter.synops.get()) if graph.counter else None
            voltage = None
            if graph.voltage is not None:
                (probed,) = graph.voltage.get_data().values()
                voltage = np.moveaxis(np.asarray(probed["v"]), 0, -1)  # [steps, *shape] → [*shape, steps]
            return spikes, counted, voltage
        finally:
            supervisor.done.set()
            # After a failure the runtime cannot stop gracefully: do not wait long for it.
            _shutdown(graph.net, timeout=2.0 if supervisor.failure else 20.0)


def _loihi2_layers(net: NetFile, spikes: np.ndarray) -> list[LayerRecord]:
    """The output layer's record from a Loihi 2 run, carrying the profiler's measurement (see backends)."""
    if any(layer.gain is not None for layer in net.layers):
        raise RuntimeConfigError(f"{net.path}: per-timestep gains have no Loihi 2 neuron model yet; use --backend sim")
    if net.readout == "voltage":
        # On the chip v is read with lava-loihi's state probes (docs/design.md, "Readouts"), which are
        # not wired here: refuse rather than decide from an output that never spikes.
        raise RuntimeConfigError(
            f"{net.path}: a voltage readout is not read on loihi2 yet; use --backend sim or emu, or train with readout: spikes"
        )
    layers = sum(1 for layer in net.layers if isinstance(layer, (ConvLayer, DenseLayer)))
    n, t = spikes.shape[0], spikes.shape[-1]
    with stop_on_signals():
        data, measured = run_on_loihi2(net.path, spikes, t, stream_steps(n, t, layers))
    shape = tuple(data.shape[:-1])
    s = local_windows(data, layers - 1, n, t).astype(np.uint8)  # the output layer is the last of ``layers``
    counts = (s != 0).reshape(n, -1, t).sum(1).astype(np.int64)
    return [LayerRecord(f"{layers - 1}:output", shape, counts, s, hardware=measured)]


def simulate(
    net: str | Path | NetFile, spikes: np.ndarray, backend: str = "sim", record: str = "output", progress: bool = False
) -> list[LayerRecord]:
    """Stream ``spikes`` ``[N, C, H, W, T]`` through the network and return every layer's record.

    ``net`` is the file's path or its :class:`NetFile` (already read: NetX reads the file itself).
    """
    chosen = get_backend(backend)
    cfg = chosen.run_config()
    n, t = spikes.shape[0], spikes.shape[-1]
    if chosen.on_chip:
        return _loihi2_layers(net if isinstance(net, NetFile) else read_net(net), spikes)
    net_path = net.path if isinstance(net, NetFile) else net
    meta = net.metadata if isinstance(net, NetFile) else read_metadata(net)  # NetX reads the layers itself
    graph = build_graph(
        net_path,
        spikes,
        record=record,
        arithmetic=chosen.arithmetic,
        voltage=meta.get("readout") == "voltage",
        graded_input=meta.get("encoding") == "counts",
    )
    if len(graph.sinks) >= t and not all(graph.graded):  # the resets' timing; sigma-delta blocks have none
        raise RuntimeConfigError(f"{net_path}: {len(graph.sinks)} layers need more than T={t} timesteps per sample")
    sink_data, counted, voltage = run_graph(graph, cfg, n, t, progress)
    incoming = synops_from_spikes(to_lava_order(spikes), graph.topology[0].fanout)
    records = []
    last = len(graph.sinks) - 1
    for k, (name, d, layer) in enumerate(zip(graph.layer_names, sink_data, graph.net.layers)):
        shape = tuple(int(v) for v in layer.out.shape)
        graded = graph.graded[k]
        if d is not None:
            s = local_windows(d, k, n, t).astype(np.int32 if graded else np.uint8)
            counts = (s != 0).reshape(n, -1, t).sum(1).astype(np.int64)
            outgoing = synops_from_spikes(s, graph.topology[k + 1].fanout) if k < last else None
        else:
            j = graph.counted.index(k)
            s = None
            counts = local_windows(counted[0][j], k, n, t).astype(np.int64)
            outgoing = local_windows(counted[1][j], k, n, t).astype(np.int64)
        v = local_windows(voltage, k, n, t).astype(np.float64) if voltage is not None and k == last else None
        records.append(
            LayerRecord(name, shape, counts, s, incoming, graph.topology[k], graph.gains[k], graded=graded, voltage=v)
        )
        incoming = outgoing
    return records
