"""Clean shutdown: a failure or SIGTERM mid-run leaves no Lava process behind; bad backends are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from conftest import ROOT, lava_run, run_cli
from lava_failing.failing_sink import FailingSink
from netfactory import LayerSpec, write_net

from chipnet.netfile import read_net
from lava_runtime.backends import run_config
from lava_runtime.graph import build_graph
from lava_runtime.simulate import LavaRunError, run_graph

T = 6


def _lava_children() -> list[psutil.Process]:
    """Our child processes except multiprocessing's resource tracker (one per Python process, not Lava's)."""
    return [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]


@pytest.mark.lava
def test_failure_mid_run_raises_and_leaves_no_lava_processes(tmp_path):
    rng = np.random.default_rng(4)
    layers = [
        LayerSpec(rng.integers(-40, 90, (3, 2, 3, 3)), padding=1, vth=60),
        LayerSpec(rng.integers(-60, 100, (5, 108)), vth=50),
    ]
    net = write_net(tmp_path / "net.net", (2, 6, 6), layers, T)
    x = (rng.random((3, 2, 6, 6, T)) < 0.3).astype(np.uint8)
    graph = build_graph(net, x)
    sink = FailingSink(shape=graph.net.layers[0].out.shape, fail_at=T + 2)  # in the second sample
    graph.net.layers[0].out.connect(sink.a_in)
    assert _lava_children() == []
    t0 = time.monotonic()
    with pytest.raises(LavaRunError, match=f"injected failure at step {T + 2}"):
        run_graph(graph, run_config("sim"), len(x), T)
    assert time.monotonic() - t0 < 60  # Lava alone would wait for its blocked workers forever
    assert _lava_children() == []


def _session_processes(sid: int) -> list[str]:
    """Every process still in session ``sid``, as ``pid: command line``."""
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid}: {' '.join(p.cmdline())}")
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return out


@pytest.mark.lava
def test_sigterm_mid_run_stops_lava_and_exits_cleanly(tiny_run, tmp_path):
    # Far more samples than Lava can run before the signal comes, so the run cannot finish first
    # (the tiny dataset's test split alone ends within a second on a fast machine).
    net = read_net(tiny_run / "model.net")
    x = (np.random.default_rng(0).random((2000, *net.input_shape, net.timesteps)) < 0.2).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lava_runtime",
            "run",
            "--net",
            str(tiny_run / "model.net"),
            "--input",
            str(tmp_path / "x.npy"),
            "--samples",
            "2000",
            "--report",
            str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        # Wait until Lava's workers run (more than the resource tracker and the memory manager).
        while len(psutil.Process(proc.pid).children(recursive=True)) < 4:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "Lava never started"
            time.sleep(0.2)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
    # Killed workers and multiprocessing's resource tracker take a moment to be reaped.
    deadline = time.monotonic() + 15
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_processes(proc.pid) == []


def test_loihi2_without_lava_loihi_is_one_line(tiny_run, tmp_path):
    proc = run_cli(
        *lava_run(str(tiny_run / "model.net")),
        "--backend",
        "loihi2",
        "--samples",
        "1",
        "--report",
        str(tmp_path / "r.json"),
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lava-loihi" in errors[0]
