"""The training loop: epochs with tqdm, per-epoch metrics, atomic checkpoints."""
from __future__ import annotations

import io
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from lava.lib.dl import slayer
from tqdm import tqdm

from train.atomic import atomic_write, atomic_write_json
from train.config import TrainConfig
from train.data import FrameDataset
from train.errors import CheckpointError
from train.models import build_model


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_datasets(cfg: TrainConfig) -> tuple[FrameDataset, FrameDataset]:
    """Train and test splits of ``cfg.dataset`` as spike tensors."""
    common = dict(size=cfg.input_size, timesteps=cfg.timesteps, options=cfg.dataset_options, cache_dir=cfg.cache_dir)
    return FrameDataset(cfg.dataset, "train", **common), FrameDataset(cfg.dataset, "test", **common)


def evaluate(net: torch.nn.Module, loader: torch.utils.data.DataLoader, loss_fn: Any, device: str) -> tuple[float, float]:
    """Mean loss and accuracy (rate-coded prediction) of ``net`` over ``loader``."""
    net.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = net(x)
            loss_sum += float(loss_fn(out, y)) * len(y)
            correct += int((slayer.classifier.Rate.predict(out) == y).sum())
            total += len(y)
    return loss_sum / max(total, 1), correct / max(total, 1)


def save_checkpoint(path: Path, net: torch.nn.Module, cfg: TrainConfig, classes: tuple[str, ...], extra: dict[str, Any]) -> None:
    """Write the model, its config and class names atomically (loadable with weights_only=True)."""
    state = {"model": net.state_dict(), "config": cfg.to_dict(), "classes": list(classes), **extra}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def load_checkpoint(run_dir: str | Path) -> tuple[torch.nn.Module, TrainConfig, dict[str, Any]]:
    """Rebuild the trained model of a run folder (``checkpoint.pt``) in eval mode."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint (is {run_dir} a training run folder?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean the same thing here
        raise CheckpointError(f"{path}: not a readable checkpoint: {e}") from None
    if not isinstance(state, dict) or not {"model", "config", "classes"} <= set(state):
        raise CheckpointError(f"{path}: checkpoint lacks model/config/classes entries")
    cfg = TrainConfig.from_dict(state["config"], source=str(path))
    net = build_model(cfg, num_classes=len(state["classes"]))
    with torch.no_grad():  # SLAYER sizes its neurons on the first forward
        net(torch.zeros(1, 2, cfg.input_size, cfg.input_size, 2))
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit model {cfg.model!r}: {e}") from None
    return net.eval(), cfg, state


def train(cfg: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Train ``cfg`` and write ``checkpoint.pt``, ``metrics.json`` and ``config.yaml`` to ``out_dir``."""
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "config.yaml", lambda fh: fh.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()))
    seed_everything(cfg.seed)
    train_set, test_set = load_datasets(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, generator=gen)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=cfg.batch_size)

    net = build_model(cfg, num_classes=len(train_set.classes)).to(cfg.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    loss_fn = slayer.loss.SpikeRate(true_rate=cfg.true_rate, false_rate=cfg.false_rate, reduction="mean").to(cfg.device)

    metrics: dict[str, Any] = {"dataset": cfg.dataset, "model": cfg.model, "epochs": []}
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        t0, total, correct, loss_sum = time.time(), 0, 0, 0.0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False)
        for x, y in bar:
            x, y = x.to(cfg.device), y.to(cfg.device)
            out = net(x)
            loss = loss_fn(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += float(loss) * len(y)
            correct += int((slayer.classifier.Rate.predict(out) == y).sum())
            total += len(y)
            bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{correct / total:.3f}")
        test_loss, test_acc = evaluate(net, test_loader, loss_fn, cfg.device)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / total,
            "train_accuracy": correct / total,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "seconds": time.time() - t0,
        }
        metrics["epochs"].append(row)
        tqdm.write(
            f"epoch {epoch}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} | "
            f"test loss {test_loss:.4f} acc {test_acc:.3f} ({row['seconds']:.1f}s)"
        )
        save_checkpoint(run_dir / "checkpoint.pt", net.cpu(), cfg, train_set.classes, {"epoch": epoch})
        net.to(cfg.device)
        metrics["test_accuracy"] = test_acc
        atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics
