"""``python -m lava_runtime stream``: synthgesture samples back to back in an AEDAT4 file and on a DV
network stream give, window for window, the decisions ``run`` gives for the samples themselves."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli
from dvwriter import event_store, write_aedat4, write_aedat31

from chipnet.events import EVENT_DTYPE, encode, to_frames
from chipnet.netfile import read_net
from lava_runtime.emu import ContinuousEmulator, emulate
from lava_runtime.stream import Frame, FrameCutter, SensorMap, _FrameQueue
from train.data.synthgesture import SynthGesture

pytest.importorskip("dv_processing")

SAMPLES = 4
BASE_US = 1_000_000_000  # a camera clock does not start at zero


@pytest.fixture(scope="module")
def recording(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny run's test samples as one AEDAT4 stream, a labels CSV, and what ``run --backend emu`` decides."""
    base = tmp_path_factory.mktemp("stream")
    net = read_net(tiny_run / "model.net")
    meta = net.metadata
    data = SynthGesture("test", **meta["dataset_options"])
    duration, size, steps = data.duration_us, meta["input_shape"][-1], meta["timesteps"]
    parts, inputs, rows = [], [], ["class,startTime_usec,endTime_usec"]
    for i in range(SAMPLES):
        events, label = data[i]
        # The dataset's binning of the sample over its window (the generator's [0, duration)), as training bins it.
        inputs.append(encode(to_frames(events, data.sensor_size, size, steps, 0, duration), meta["encoding"]))
        shifted = events.copy()
        shifted["t"] += BASE_US + i * duration
        parts.append(shifted)
        rows.append(f"{label + 1},{BASE_US + i * duration},{BASE_US + (i + 1) * duration}")
    closing = parts[-1][-1:].copy()
    closing["t"] = BASE_US + SAMPLES * duration  # a live stream knows a frame is over when a later event arrives
    events = np.concatenate(parts + [closing])
    write_aedat4(base / "gestures.aedat4", events)
    (base / "labels.csv").write_text("\n".join(rows) + "\n")
    np.save(base / "events.npy", events)
    np.save(base / "x.npy", np.stack(inputs))
    run_cli(
        *["-m", "lava_runtime", "run", "--net", str(tiny_run / "model.net"), "--input", str(base / "x.npy")],
        *["--backend", "emu", "--report", str(base / "report.json"), "--spikes", str(base / "out.npy")],
    )
    report = json.loads((base / "report.json").read_text())
    out = np.load(base / "out.npy")
    return {
        "base": base,
        "net": tiny_run / "model.net",
        "predictions": report["predictions"],
        "counts": (out.reshape(SAMPLES, -1, steps) != 0).sum(-1).tolist(),
        "labels": [data[i][1] for i in range(SAMPLES)],
        "duration": duration,
        "steps": steps,
    }


def stream(recording: dict, source: str, out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    args = ["-m", "lava_runtime", "stream", "--net", str(recording["net"]), "--source", source]
    args += ["--out", str(out), "--start-us", str(BASE_US), "--labels", str(recording["base"] / "labels.csv")]
    return run_cli(*args, *extra, "--quiet", check=check)


def decisions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_windows(recording: dict, lines: list[dict], samples: int = SAMPLES) -> None:
    """One decision per sample window, each equal to ``run``'s for that sample (class and spike counts)."""
    assert [d["t_start_us"] for d in lines] == [BASE_US + i * recording["duration"] for i in range(samples)]
    assert [d["class"] for d in lines] == recording["predictions"][:samples]
    assert [d["spike_counts"] for d in lines] == recording["counts"][:samples]
    assert [d["truth"] for d in lines] == recording["labels"][:samples]


def test_aedat4_stream_decides_as_run_emu(recording: dict, tmp_path: Path) -> None:
    out = tmp_path / "decisions.jsonl"
    proc = stream(recording, str(recording["base"] / "gestures.aedat4"), out)
    check_windows(recording, decisions(out))
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["decisions"] == SAMPLES and summary["dropped_frames"] == 0 and summary["error"] is None
    assert summary["frames"] == SAMPLES * recording["steps"] + 1  # the closing event's frame
    assert summary["events"] == len(np.load(recording["base"] / "events.npy"))
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99"} and summary["realtime_factor"] > 0
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "real-time factor" in proc.stderr


def test_aedat31_file_decides_as_the_aedat4_one(recording: dict, tmp_path: Path) -> None:
    """An AEDAT 3.1 file of the same events (the project's own reader) gives the same decisions."""
    aedat = tmp_path / "gestures.aedat"
    write_aedat31(aedat, np.load(recording["base"] / "events.npy"))
    out = tmp_path / "aedat31.jsonl"
    stream(recording, str(aedat), out)
    check_windows(recording, decisions(out))


def test_sliding_windows_include_the_sample_windows(recording: dict, tmp_path: Path) -> None:
    """``--every frame`` decides at every frame; the decisions that close a sample window are the samples'."""
    out = tmp_path / "sliding.jsonl"
    stream(recording, str(recording["base"] / "gestures.aedat4"), out, "--every", "frame")
    lines = decisions(out)
    steps = recording["steps"]
    assert [d["frame"] for d in lines] == list(range(steps - 1, SAMPLES * steps + 1))
    check_windows(recording, [d for d in lines if (d["frame"] + 1) % steps == 0])


@pytest.mark.lava
def test_aedat4_stream_on_sim_decides_as_run_emu(recording: dict, tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    stream(recording, str(recording["base"] / "gestures.aedat4"), out, "--backend", "sim")
    check_windows(recording, decisions(out))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _network_stream(recording: dict, out: Path, stop_after: int | None = None) -> subprocess.CompletedProcess:
    """``stream`` on a DV network stream served on loopback by dv-processing's writer in a subprocess."""
    port = _free_port()
    argv = [sys.executable, str(ROOT / "tests" / "dvwriter.py"), str(port), str(recording["base"] / "events.npy")]
    server = subprocess.Popen(
        argv + ([str(stop_after)] if stop_after is not None else []), stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert server.stdout.readline().strip() == "listening"
        proc = stream(recording, f"tcp://127.0.0.1:{port}", out, "--max-queue", "1000", check=False)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return proc


def test_network_stream_decides_as_run_emu(recording: dict, tmp_path: Path) -> None:
    out = tmp_path / "network.jsonl"
    proc = _network_stream(recording, out)
    check_windows(recording, decisions(out))
    assert json.loads(out.with_suffix(".summary.json").read_text())["dropped_frames"] == 0
    # A live stream ends when the sender goes: one line naming it.
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: tcp://127.0.0.1:")


def test_network_disconnect_mid_way_keeps_the_decisions(recording: dict, tmp_path: Path) -> None:
    out = tmp_path / "cut.jsonl"
    events = np.load(recording["base"] / "events.npy")
    middle = int(np.searchsorted(events["t"], BASE_US + 2.5 * recording["duration"]))
    proc = _network_stream(recording, out, stop_after=middle)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and "disconnected" in last and last.startswith("error: tcp://127.0.0.1:")
    check_windows(recording, decisions(out), samples=2)
    assert json.loads(out.with_suffix(".summary.json").read_text())["error"] is not None


def test_truncated_aedat4_is_one_line(recording: dict, tmp_path: Path) -> None:
    data = (recording["base"] / "gestures.aedat4").read_bytes()
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(data[: len(data) // 2])
    proc = stream(recording, str(cut), tmp_path / "d.jsonl", check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith(f"error: {cut}:") and "truncated" in last


def test_other_sensor_needs_crop_or_downsample(recording: dict, tmp_path: Path) -> None:
    events = np.load(recording["base"] / "events.npy")[:5000]
    wide = tmp_path / "wide.aedat4"
    write_aedat4(wide, events, resolution=(240, 180))
    proc = stream(recording, str(wide), tmp_path / "d.jsonl", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {wide}: 240×180 events")
    assert "--crop" in proc.stderr and "--downsample" in proc.stderr
    # The 128×128 corner is the trained sensor again: frames bin as before.
    ok = stream(recording, str(wide), tmp_path / "crop.jsonl", "--crop", "0,0,128,128")
    assert ok.returncode == 0
    assert stream(recording, str(wide), tmp_path / "pool.jsonl", "--downsample").returncode == 0


def test_no_reset_starts_as_the_first_sample_and_keeps_its_state(recording: dict, tmp_path: Path) -> None:
    """``--reset never``: the first window starts from zero state as ``run``'s sample does; the network then runs on."""
    out = tmp_path / "never.jsonl"
    stream(recording, str(recording["base"] / "gestures.aedat4"), out, "--reset", "never")
    lines = decisions(out)
    assert len(lines) == SAMPLES
    assert lines[0]["class"] == recording["predictions"][0] and lines[0]["spike_counts"] == recording["counts"][0]
    net = read_net(recording["net"])
    x = np.load(recording["base"] / "x.npy")
    whole = ContinuousEmulator(net).step(np.concatenate(list(x), axis=-1))
    chunked = ContinuousEmulator(net)
    parts = [chunked.step(x[i][..., j : j + 3]) for i in range(SAMPLES) for j in range(0, x.shape[-1], 3)]
    assert np.array_equal(whole, np.concatenate(parts, axis=-1))  # the state carries from call to call
    first = emulate(net, x[:1])[-1].spikes[0]
    assert np.array_equal(whole[..., : x.shape[-1]], first)
    assert (
        "--reset never runs on emu only"
        in stream(
            recording,
            str(recording["base"] / "gestures.aedat4"),
            out,
            "--reset",
            "never",
            "--backend",
            "sim",
            check=False,
        ).stderr
    )


def test_realtime_paces_a_file(recording: dict, tmp_path: Path) -> None:
    out = tmp_path / "paced.jsonl"
    stream(recording, str(recording["base"] / "gestures.aedat4"), out, "--realtime", "--max-queue", "64")
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["wall_s"] >= 0.95 * summary["stream_s"] and summary["decisions"] + summary["dropped_frames"] > 0


def test_a_source_that_cannot_wait_drops_frames_and_counts_them() -> None:
    queue = _FrameQueue(capacity=2, block=False)
    frames = [Frame(k, k, k + 1, 0, np.zeros((2, 1, 1), np.uint8), 0.0) for k in range(5)]
    for frame in frames:
        queue.put(frame)
    assert queue.dropped == 3
    assert [f.index for f in queue.take()[0]] == [0, 1]


def test_frames_follow_the_grid_with_empty_frames_in_gaps() -> None:
    cutter = FrameCutter(SensorMap((4, 4), 2), period_us=10, encoding="counts", start_us=100)
    events = np.zeros(4, dtype=EVENT_DTYPE)
    events["t"] = [95, 100, 105, 131]  # before the grid, frame 0 twice, frame 3
    events["x"], events["y"], events["p"] = [0, 0, 3, 3], [0, 0, 3, 3], [1, 1, 0, 0]
    frames = cutter.push(events, 1.0)
    assert [(f.index, f.t_start, f.events) for f in frames] == [(0, 100, 2), (1, 110, 0), (2, 120, 0)]
    assert frames[0].spikes[1, 0, 0] == 1 and frames[0].spikes[0, 1, 1] == 1  # sum-pooled 4×4 → 2×2, by polarity
    assert [(f.index, f.events) for f in cutter.flush()] == [(3, 1)]


def test_stopping_a_stream_prints_the_summary_and_keeps_the_decisions(recording: dict, tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C), the way a camera's stream is stopped: exit 130, decisions and summary on disk."""
    out = tmp_path / "stopped.jsonl"
    args = ["-m", "lava_runtime", "stream", "--net", str(recording["net"]), "--realtime", "--quiet"]
    args += ["--source", str(recording["base"] / "gestures.aedat4"), "--start-us", str(BASE_US), "--out", str(out)]
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text().count("\n") >= 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and err.strip().splitlines()[-1].startswith("interrupted: the stream was stopped")
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["interrupted"] and 1 <= summary["decisions"] < SAMPLES
    assert len(decisions(out)) == summary["decisions"]


def test_noise_filter_is_dv_processings(recording: dict, tmp_path: Path) -> None:
    """``--noise-filter``: dv-processing's background-activity filter, as it filters the whole recording at once."""
    import datetime

    import dv_processing as dv

    events = np.load(recording["base"] / "events.npy")
    reference = dv.noise.BackgroundActivityNoiseFilter((128, 128), datetime.timedelta(microseconds=1000))
    reference.accept(event_store(events))
    kept = reference.generateEvents().size()
    out = tmp_path / "filtered.jsonl"
    stream(recording, str(recording["base"] / "gestures.aedat4"), out, "--noise-filter", "1000")
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["events"] == kept and summary["events_filtered_out"] == len(events) - kept > 0
    aedat = tmp_path / "gestures.aedat"
    write_aedat31(aedat, events[:100])
    proc = stream(recording, str(aedat), out, "--noise-filter", "1000", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(f"error: {aedat}: --noise-filter")


def test_a_missing_backend_fails_before_the_stream_starts(recording: dict, tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("lava.magma.compiler.subcompilers.nc") is not None:
        pytest.skip("lava-loihi is installed")
    out = tmp_path / "loihi2.jsonl"
    proc = stream(recording, str(recording["base"] / "gestures.aedat4"), out, "--backend", "loihi2", check=False)
    assert proc.returncode == 2 and "lava-loihi" in proc.stderr.strip().splitlines()[-1] and not out.exists()


def test_a_source_that_cannot_be_opened_is_one_line(recording: dict, tmp_path: Path) -> None:
    refused = stream(recording, f"tcp://127.0.0.1:{_free_port()}", tmp_path / "d.jsonl", check=False)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and last.startswith("error: tcp://127.0.0.1:") and "cannot connect" in last
    assert "/vcpkg/" not in last
    bad = stream(recording, "tcp://127.0.0.1:http", tmp_path / "d.jsonl", check=False)
    assert bad.stderr.strip().splitlines()[-1] == "error: tcp://127.0.0.1:http: a network stream is tcp://HOST:PORT"


def test_no_camera_is_one_line(recording: dict, tmp_path: Path) -> None:
    import dv_processing as dv

    if dv.io.camera.discover():
        pytest.skip("a camera is attached")
    proc = stream(recording, "camera", tmp_path / "d.jsonl", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: camera: no camera found")
