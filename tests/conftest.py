"""Shared fixtures: a tiny trained run, exported once per session (real SLAYER, real NetX, real Lava)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY_CONFIG = """\
dataset: synthgesture
dataset_options: {samples_per_class: 3, seed: 7}
model: vgg
input_size: 16
timesteps: 8
channels: [4]
hidden: 16
epochs: 2
batch_size: 8
lr: 0.003
seed: 0
"""


def run_cli(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    """Run one of the project's entry points as a user would, from the repo root."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def lava_run(net: str | Path, dataset: str = "synthgesture") -> list[str]:
    """The arguments of ``python -m lava_runtime run`` on ``net`` and ``dataset`` (more options follow)."""
    return ["-m", "lava_runtime", "run", "--net", str(net), "--dataset", dataset]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained and exported tiny run folder: checkpoint.pt, metrics.json, config.yaml, model.net."""
    base = tmp_path_factory.mktemp("tiny")
    config = base / "tiny.yaml"
    config.write_text(TINY_CONFIG + f"cache_dir: {base / 'cache'}\n")
    run = base / "run"
    run_cli("train/run.py", "--config", str(config), "--out", str(run))
    run_cli("export/to_netx.py", "--run", str(run), "--out", str(run / "model.net"))
    return run


@pytest.fixture(scope="session")
def tiny_sma_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny sma-azo-vgg run (not yet exported), with the paper's norm and dropout as dvsgesture.yaml."""
    base = tmp_path_factory.mktemp("tiny_sma")
    config = base / "tiny.yaml"
    text = TINY_CONFIG.replace("model: vgg", "model: sma-azo-vgg").replace("channels: [4]", "channels: [4, 6]")
    text += "norm: weight-scale\ndropout: 0.5\n"
    config.write_text(text + f"cache_dir: {base / 'cache'}\n")
    run = base / "run"
    run_cli("train/run.py", "--config", str(config), "--out", str(run))
    return run


@pytest.fixture(scope="session")
def tiny_ma_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ma-vgg run (TCA) trained by ``train/run.py --model ma-vgg`` (not yet exported)."""
    base = tmp_path_factory.mktemp("tiny_ma")
    config = base / "tiny.yaml"
    config.write_text(TINY_CONFIG.replace("channels: [4]", "channels: [4, 6]") + f"cache_dir: {base / 'cache'}\n")
    run = base / "run"
    run_cli("train/run.py", "--config", str(config), "--model", "ma-vgg", "--out", str(run))
    return run
