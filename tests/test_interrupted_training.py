"""A training run killed with SIGKILL mid-epoch resumes from its last completed epoch, exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch
from conftest import ROOT

CONFIG = """\
dataset: synthgesture
dataset_options: {samples_per_class: 6, seed: 2}
model: sma-azo-vgg
input_size: 16
timesteps: 8
channels: [4, 6]
hidden: 16
epochs: 4
batch_size: 4
lr: 0.005
seed: 1
"""


def _epochs_done(run) -> int:
    try:
        return len(json.loads((run / "metrics.json").read_text())["epochs"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG + f"cache_dir: {tmp_path / 'cache'}\n")
    # One thread everywhere: the same float summation order in all three processes.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    reference = tmp_path / "reference"
    subprocess.run(
        [sys.executable, "train/run.py", "--config", str(config), "--out", str(reference)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "train/run.py", "--config", str(config), "--out", str(killed)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while _epochs_done(killed) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    done = _epochs_done(killed)
    assert 1 <= done < 4, "the kill must land before the run finished"
    state = torch.load(killed / "checkpoint.pt", weights_only=True)  # intact despite the kill
    assert state["epoch"] == done

    subprocess.run(
        [sys.executable, "train/run.py", "--config", str(config), "--out", str(killed), "--resume"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    got = json.loads((killed / "metrics.json").read_text())["epochs"]
    want = json.loads((reference / "metrics.json").read_text())["epochs"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(got) == strip(want)
    a = torch.load(reference / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(killed / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
