"""The training command: run files, best/last checkpoints, and a resume that continues exactly."""

from __future__ import annotations

import csv
import json
import platform

import pytest
import torch
from conftest import run_cli

from chipnet.errors import CheckpointError, ConfigError
from train.allocator import keep_freed_memory
from train.config import NeuronConfig, TrainConfig
from train.loop import load_checkpoint, train


def tiny(tmp_path, **kw) -> TrainConfig:
    opts = {
        "dataset": "synthgesture",
        "dataset_options": {"samples_per_class": 2, "seed": 5},
        "model": "sma-azo-vgg",
        "input_size": 16,
        "timesteps": 8,
        "channels": [8, 8],
        "hidden": 32,
        "neuron": NeuronConfig(threshold=0.75),
        "epochs": 3,
        "batch_size": 8,
        "lr": 0.01,
        "scheduler": "cosine",
        "weight_decay": 0.01,
        "seed": 3,
        "cache_dir": str(tmp_path / "cache"),
    }
    return TrainConfig(**{**opts, **kw})


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    full = train(tiny(tmp_path), tmp_path / "full")
    part = train(tiny(tmp_path, epochs=1), tmp_path / "part")
    assert part["epochs"][0] == {**full["epochs"][0], "seconds": part["epochs"][0]["seconds"]}
    resumed = train(tiny(tmp_path), tmp_path / "part", resume=True)
    assert [r["epoch"] for r in resumed["epochs"]] == [1, 2, 3]
    for a, b in zip(full["epochs"][1:], resumed["epochs"][1:]):
        # Same shuffles, AdamW moments, cosine lr and weights: the same losses to the last bit.
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert full["epochs"][1]["lr"] < full["epochs"][0]["lr"]  # the schedule is part of what resumed
    assert len({r["train_loss"] for r in full["epochs"]}) == 3  # and the network does learn
    a, _, _ = load_checkpoint(tmp_path / "full")
    b, _, _ = load_checkpoint(tmp_path / "part")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    # The selection carries over the resume too: the same best epoch, val score and best.pt.
    keys = ("best_epoch", "best_val_accuracy", "test_accuracy_selected", "selection", "val_samples")
    assert {k: resumed[k] for k in keys} == {k: full[k] for k in keys}
    a = torch.load(tmp_path / "full" / "best.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "best.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_run_folder_has_metrics_csv_curves_and_best_and_last_checkpoints(tmp_path):
    metrics = train(tiny(tmp_path, model="sma-vgg"), tmp_path / "run")
    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["test_accuracy"]) for r in rows] == [r["test_accuracy"] for r in metrics["epochs"]]
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # Selected on validation, never on test: the first epoch of the highest val accuracy.
    best_epoch = max(metrics["epochs"], key=lambda r: r["val_accuracy"])["epoch"]  # first of equals
    assert metrics["best_epoch"] == best_epoch and metrics["selection"] == "val_accuracy"
    assert metrics["val_samples"] == 2  # round(0.1 × 22) of synthgesture's 22 training samples
    assert [float(r["val_accuracy"]) for r in rows] == [r["val_accuracy"] for r in metrics["epochs"]]
    assert metrics["test_accuracy_selected"] == metrics["epochs"][best_epoch - 1]["test_accuracy"]
    assert metrics["test_accuracy_last"] == metrics["test_accuracy"] == metrics["epochs"][-1]["test_accuracy"]
    assert metrics["best_val_accuracy"] == metrics["epochs"][best_epoch - 1]["val_accuracy"]
    last = torch.load(run / "checkpoint.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    assert last["epoch"] == 3 and best["epoch"] == best_epoch and best["selection"] == "val_accuracy"
    assert {"optimizer", "scheduler", "rng"} <= set(last) and "optimizer" not in best
    net, cfg, _ = load_checkpoint(run, "best.pt")
    assert cfg.model == "sma-vgg" and not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, best["model"][k]), k


def test_without_validation_best_is_the_last_epoch(tmp_path):
    metrics = train(tiny(tmp_path, model="vgg", epochs=2, val_fraction=0.0), tmp_path / "run")
    assert metrics["selection"] == "last" and metrics["best_epoch"] == 2 and metrics["val_samples"] == 0
    assert [r["val_accuracy"] for r in metrics["epochs"]] == [None, None]
    assert metrics["test_accuracy_selected"] == metrics["test_accuracy_last"] == metrics["epochs"][-1]["test_accuracy"]
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["epoch"] == 2 and best["selection"] == "last"
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [r["val_accuracy"] for r in rows] == ["", ""]


def test_resume_refuses_a_missing_checkpoint_or_changed_options(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tiny(tmp_path), tmp_path / "none", resume=True)
    train(tiny(tmp_path, epochs=1, model="vgg"), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"lr: 0.01 → 0.02"):
        train(tiny(tmp_path, epochs=2, model="vgg", lr=0.02), tmp_path / "run", resume=True)


def test_cli_resume_reads_the_run_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(tiny(tmp_path, epochs=1, model="vgg").to_dict()))
    run = tmp_path / "run"
    run_cli("train/run.py", "--config", str(cfg), "--out", str(run))
    proc = run_cli("train/run.py", "--resume", "--epochs", "2", "--out", str(run))
    assert "test accuracy" in proc.stdout
    assert [r["epoch"] for r in json.loads((run / "metrics.json").read_text())["epochs"]] == [1, 2]
    proc = run_cli(
        "train/run.py",
        "--device",
        "cuda:0" if not torch.cuda.is_available() else "tpu",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / "x"),
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "device" in proc.stderr


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_with_two_gloo_processes_trains_on_the_whole_set(tmp_path):
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny(tmp_path, epochs=2, batch_size=4).to_dict()))
    # A static rendezvous on a free local port: torchrun's --standalone (c10d) rendezvous segfaults with
    # torch 2.3 on Python 3.12, and this one works with every torch of the constraints files.
    run_cli(
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "--nproc_per_node",
        "2",
        "train/run.py",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / "run"),
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and [r["epoch"] for r in metrics["epochs"]] == [1, 2]
    # Counts summed over both processes: whole samples of the 20 train, 2 validation, 22 test samples.
    assert metrics["val_samples"] == 2
    for row in metrics["epochs"]:
        for key, n in (("train_accuracy", 20), ("val_accuracy", 2), ("test_accuracy", 22)):
            assert abs(row[key] * n - round(row[key] * n)) < 1e-9
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["epoch"] == 2


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc settings are glibc's")
def test_cpu_training_keeps_freed_memory_with_glibc():
    # mallopt returns 0 for a value it refuses (e.g. an mmap threshold above its ceiling).
    assert keep_freed_memory() is True and keep_freed_memory() is True


def test_train_step_bench_prints_every_model_and_the_goal(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("dataset: synthgesture\ninput_size: 16\ntimesteps: 6\nchannels: [4, 6]\nhidden: 8\nbatch_size: 2\n")
    out = run_cli(
        "bench/train_step.py",
        "--config",
        str(cfg),
        "--models",
        "vgg,sma-azo-vgg",
        "--rounds",
        "1",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--json",
        str(tmp_path / "bench.json"),
    ).stdout
    assert ("malloc keeps freed memory" in out) == (platform.libc_ver()[0] == "glibc") and "goal: SMA step time" in out
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert [r["model"] for r in results] == ["vgg", "sma-azo-vgg"] and results[0]["time_ratio"] == 1.0
    assert all(r["step_s"] > 0 and r["peak_bytes"] > 0 for r in results)
