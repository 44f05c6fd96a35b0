"""The training loop: epochs with tqdm, per-epoch metrics, atomic last/best checkpoints, resume, DDP.

Run folder: ``checkpoint.pt`` (the last epoch: weights, config, classes, plus optimizer,
scheduler and RNG state for ``--resume``), ``best.pt`` (the selected epoch, the file export and
fine-tuning read: best validation accuracy, or the last epoch when ``val_fraction`` is 0; test
accuracy never chooses), ``metrics.json``, ``metrics.csv``, ``curves.png``, ``layers.png`` (per-layer
firing rates and gradient norms), ``config.yaml``.
Under ``torchrun`` each process trains on its shard (DistributedSampler, ``batch_size`` per
process) and rank 0 writes the files.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from chipnet.atomic import atomic_write, atomic_write_json
from chipnet.decision import predict
from chipnet.errors import CheckpointError, ConfigError
from chipnet.progress import progress_bar
from train.allocator import keep_freed_memory
from train.config import TrainConfig
from train.data import Augment, FrameDataset, FrameSubset
from train.data.splits import validation_split
from train.models import build_model, check_options
from train.models.readout import make_loss
from train.monitor import EpochMonitor, format_rates, silent_warning

LAST, BEST = "checkpoint.pt", "best.pt"
CSV_COLUMNS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "lr",
    "seconds",
)
# Options a resumed run may change; anything else would make it a different run.
RESUMABLE_CHANGES = {"epochs", "device", "cache_dir"}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def config_dataset(cfg: TrainConfig, split: str, **options: Any) -> FrameDataset:
    """``split`` of ``cfg.dataset`` binned as ``cfg`` trains on it (``options``: augment, limit, ...)."""
    return FrameDataset(
        cfg.dataset,
        split,
        size=cfg.input_size,
        timesteps=cfg.timesteps,
        options=cfg.dataset_options,
        cache_dir=cfg.cache_dir,
        data_root=cfg.data_root,
        denoise_us=cfg.denoise_us,
        workers=cfg.workers,
        binning=cfg.binning,
        encoding=cfg.encoding,
        **options,
    )


def load_splits(cfg: TrainConfig) -> tuple[FrameSubset, FrameSubset | None, FrameDataset]:
    """Train part, validation part (``None`` when ``cfg.val_fraction`` is 0) and test split of ``cfg.dataset``.

    Train and validation are index views of the one cached training split, held out by
    :func:`validation_split` with ``cfg.seed``; only the train part is augmented.
    """
    full = config_dataset(cfg, "train", augment=Augment.from_options(cfg.augment))
    train_idx, val_idx = validation_split(full.labels, full.groups, cfg.val_fraction, cfg.seed)
    val_set = FrameSubset(full, val_idx) if len(val_idx) else None
    return FrameSubset(full, train_idx, full.augment), val_set, config_dataset(cfg, "test")


def load_datasets(cfg: TrainConfig) -> tuple[FrameSubset, FrameDataset]:
    """The train part (validation held out) and the test split of ``cfg.dataset``."""
    train_set, _, test_set = load_splits(cfg)
    return train_set, test_set


@dataclass
class Process:
    """Where this process trains: its device and its place among ``torchrun`` processes."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        """Whether this process is one of several (torchrun)."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder (rank 0)."""
        return self.rank == 0


def setup_process(device: str) -> Process:
    """The device to train on and, under ``torchrun`` (WORLD_SIZE > 1), the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but torch finds no CUDA device here; use --device cpu")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        dev = torch.device("cuda", local) if world > 1 or device == "cuda" else torch.device(device)
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
        keep_freed_memory()
    else:
        raise ConfigError(f"unknown device {device!r}; use cpu or cuda")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return Process(dev, rank, world)


def _all_sum(values: list[float], proc: Process) -> list[float]:
    """Sum ``values`` over all processes (identity when not distributed)."""
    if not proc.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=proc.device)
    dist.all_reduce(t)
    return t.tolist()


def evaluate(
    net: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    loss_fn: Any,
    device: str | torch.device,
    proc: Process | None = None,
    readout: str = "spikes",
) -> tuple[float, float]:
    """Mean loss and accuracy (``chipnet.decision``, the rule of ``readout``) of ``net`` over ``loader`` (summed over processes)."""
    net.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = net(x)
            loss_sum += loss_fn(out, y).item() * len(y)
            correct += int((predict(out, readout) == y.cpu().numpy()).sum())
            total += len(y)
    loss_sum, correct, total = _all_sum([loss_sum, correct, total], proc or Process(torch.device(device)))
    return loss_sum / max(total, 1), correct / max(total, 1)


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``net`` (unwrapped from DDP) as CPU tensors."""
    net = getattr(net, "module", net)
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def save_checkpoint(
    path: Path, net: torch.nn.Module, cfg: TrainConfig, classes: tuple[str, ...], extra: dict[str, Any]
) -> None:
    """Write the model, its config and class names atomically (loadable with weights_only=True)."""
    state = {"model": _cpu_state(net), "config": cfg.to_dict(), "classes": list(classes), **extra}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _read_state(path: Path, run_dir: str | Path) -> dict[str, Any]:
    """A checkpoint file's contents, with errors that name the file."""
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint (is {run_dir} a training run folder?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean the same thing here
        raise CheckpointError(f"{path}: not a readable checkpoint: {e}") from None
    if not isinstance(state, dict) or not {"model", "config", "classes"} <= set(state):
        raise CheckpointError(f"{path}: checkpoint lacks model/config/classes entries")
    return state


def load_checkpoint(run_dir: str | Path, name: str = LAST) -> tuple[torch.nn.Module, TrainConfig, dict[str, Any]]:
    """Rebuild the trained model of a run folder (``checkpoint.pt``, or ``best.pt``) in eval mode."""
    path = Path(run_dir) / name
    state = _read_state(path, run_dir)
    cfg = TrainConfig.from_dict(state["config"], source=str(path))
    net = build_model(cfg, num_classes=len(state["classes"]))
    net.materialize()  # SLAYER sizes its neurons on the first forward
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit model {cfg.model!r}: {e}") from None
    return net.eval(), cfg, state


def load_selected(run_dir: str | Path) -> tuple[torch.nn.Module, TrainConfig, dict[str, Any], str]:
    """The run's selected model (``best.pt``; ``checkpoint.pt`` for older runs) and which file it came from.

    A ``best.pt`` without a ``selection`` entry predates validation and was chosen on test
    accuracy, so the last epoch is the honest choice there.
    """
    if (Path(run_dir) / BEST).exists():
        net, cfg, state = load_checkpoint(run_dir, BEST)
        if "selection" in state:
            return net, cfg, state, BEST
    return (*load_checkpoint(run_dir, LAST), LAST)


def rng_state(loader_gen: torch.Generator) -> dict[str, Any]:
    """Every random state a training run draws from, as weights_only-loadable data."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "loader": loader_gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], loader_gen: torch.Generator) -> None:
    """Restore what :func:`rng_state` saved."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    loader_gen.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_optimizer(cfg: TrainConfig, net: torch.nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW with ``cfg.weight_decay`` and the epoch-wise lr schedule ``cfg.scheduler``."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """Factor on ``cfg.lr`` after ``epoch`` epochs, in closed form so a resume with more epochs stays smooth.

    ``warmup_epochs`` ramp it linearly from ``1/(w+1)`` to 1; the schedule then runs over the rest.
    """
    w = cfg.warmup_epochs
    if cfg.scheduler == "cosine":
        span = max(cfg.epochs - w, 1)
        after = lambda e: 0.5 * (1.0 + math.cos(math.pi * min(e - w, span) / span))  # noqa: E731
    elif cfg.scheduler == "none":
        after = lambda e: 1.0  # noqa: E731
    else:
        raise ConfigError(f"unknown scheduler {cfg.scheduler!r}; known: none, cosine")
    return lambda epoch: (epoch + 1) / (w + 1) if epoch < w else after(epoch)


def _check_resumable(cfg: TrainConfig, saved: dict[str, Any], path: Path) -> None:
    """Refuse to resume a run with options that would make it a different run."""
    now = cfg.to_dict()
    # Runs from before validation held nothing out; options added since take their defaults.
    saved = {**TrainConfig().to_dict(), "val_fraction": 0.0, **saved}
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and now[k] != saved.get(k))
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in changed)
        raise ConfigError(
            f"{path}: cannot resume with changed options ({detail}); only {sorted(RESUMABLE_CHANGES)} may change"
        )


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """``metrics.json``, ``metrics.csv`` and ``curves.png``, each written atomically."""
    from train.plots import layer_health, training_curves  # matplotlib only where figures are drawn

    atomic_write_json(run_dir / "metrics.json", metrics)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(metrics["epochs"])
    atomic_write(run_dir / "metrics.csv", lambda fh: fh.write(text.getvalue().encode()))
    training_curves(metrics, run_dir / "curves.png")
    layer_health(metrics, run_dir / "layers.png")


def train(
    cfg: TrainConfig, out_dir: str | Path, resume: bool = False, init_state: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir``; with ``resume``, continue from its ``checkpoint.pt``.

    ``init_state`` starts a new run from given weights (deploy-aware fine-tuning of a fold).
    """
    proc = setup_process(cfg.device)
    # Choices that would only fail later are checked before anything is binned.
    try:
        loss_fn = make_loss(cfg.readout, cfg.loss, cfg.true_rate, cfg.false_rate)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    check_options(cfg)
    lr_factor(cfg)
    amp = cfg.amp and proc.device.type == "cuda"  # mixed precision needs CUDA; on CPU the flag is ignored
    run_dir = Path(out_dir)
    saved: dict[str, Any] | None = None
    if resume:
        saved = _read_state(run_dir / LAST, run_dir)
        if "optimizer" not in saved:
            raise CheckpointError(f"{run_dir / LAST}: has no optimizer/scheduler/RNG state to resume from")
        _check_resumable(cfg, saved["config"], run_dir / LAST)
    if proc.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(
            run_dir / "config.yaml", lambda fh: fh.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
        )
    seed_everything(cfg.seed)
    train_set, val_set, test_set = load_splits(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)

    def eval_loader(data: torch.utils.data.Dataset) -> torch.utils.data.DataLoader:
        # Under torchrun each process takes every world_size-th sample, without padding, so the
        # summed counts are exact.
        if proc.distributed:
            data = torch.utils.data.Subset(data, range(proc.rank, len(data), proc.world_size))
        return torch.utils.data.DataLoader(data, batch_size=cfg.batch_size)

    if proc.distributed:
        # Every process shuffles with the same seed and takes its own slice.
        sampler = torch.utils.data.DistributedSampler(
            train_set, proc.world_size, proc.rank, shuffle=True, seed=cfg.seed
        )
        train_loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler)
    else:
        sampler = None
        train_loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, generator=gen)
    val_loader = eval_loader(val_set) if val_set is not None else None
    test_loader = eval_loader(test_set)
    # Test accuracy is only reported: the selected epoch is the best on validation, else the last.
    selection = "val_accuracy" if val_set is not None else "last"

    net = build_model(cfg, num_classes=len(train_set.classes))
    net.materialize()
    metrics: dict[str, Any] = {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "world_size": proc.world_size,
        "selection": selection,
        "val_samples": len(val_set) if val_set is not None else 0,
        "epochs": [],
    }
    start, best_acc, best_epoch = 1, -1.0, 0
    if saved is not None:
        net.load_state_dict(saved["model"])
    elif init_state is not None:
        net.load_state_dict(init_state)
    net.to(proc.device)
    optimizer, scheduler = make_optimizer(cfg, net)
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        # The saved lr belongs to the saved epoch count; --epochs may have grown since.
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * lr_factor(cfg)(scheduler.last_epoch)
        metrics = saved["metrics"]
        metrics.update(selection=selection, val_samples=metrics.get("val_samples", 0))  # older runs lack them
        start, best_acc, best_epoch = saved["epoch"] + 1, saved.get("best_val_accuracy", -1.0), saved["best_epoch"]
        set_rng_state(saved["rng"], gen)  # last: building the model above drew from the RNGs
    model = net
    if proc.distributed:
        ids = [proc.device.index] if proc.device.type == "cuda" else None
        # SLAYER's neuron state buffers are per-batch scratch, nothing to broadcast.
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn = loss_fn.to(proc.device)
    monitor = EpochMonitor(net, cfg.readout)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    for epoch in range(start, cfg.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        t0, total, correct, loss_sum = time.time(), 0, 0, 0.0
        lr = optimizer.param_groups[0]["lr"]
        bar = progress_bar(train_loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, enabled=proc.main)
        monitor.reset()
        for x, y in bar:
            x, y = x.to(proc.device), y.to(proc.device)
            with torch.autocast("cuda", enabled=amp):
                out = model(x)
                loss = loss_fn(out, y)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # true gradient norms for the monitor
            monitor.after_backward()
            scaler.step(optimizer)
            scaler.update()
            monitor.add_outputs(out)
            loss_sum += loss.item() * len(y)
            correct += int((predict(out, cfg.readout) == y.cpu().numpy()).sum())
            total += len(y)
            bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{correct / total:.3f}")
        scheduler.step()
        loss_sum, correct, total = _all_sum([loss_sum, correct, total], proc)
        val_loss, val_acc = (
            evaluate(net, val_loader, loss_fn, proc.device, proc, cfg.readout)
            if val_loader is not None
            else (None, None)
        )
        test_loss, test_acc = evaluate(net, test_loader, loss_fn, proc.device, proc, cfg.readout)
        inside = monitor.summary()
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(total, 1),
            "train_accuracy": correct / max(total, 1),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "lr": lr,
            "seconds": time.time() - t0,
            **inside,
        }
        metrics["epochs"].append(row)
        if val_acc is None:
            best_epoch = epoch
        elif val_acc > best_acc:  # strictly better: a tie keeps the earlier epoch
            best_acc, best_epoch = val_acc, epoch
        selected = next(r for r in metrics["epochs"] if r["epoch"] == best_epoch)
        metrics["best_epoch"], metrics["best_val_accuracy"] = best_epoch, selected["val_accuracy"]
        metrics["test_accuracy_selected"], metrics["test_accuracy_last"] = selected["test_accuracy"], test_acc
        metrics["test_accuracy"] = test_acc  # the last epoch's, as before
        # The paper's protocol (the best test epoch): optimistic, since test then chooses; reported, never used.
        best_test = max(metrics["epochs"], key=lambda r: r["test_accuracy"])
        metrics["test_accuracy_best_epoch"] = {"epoch": best_test["epoch"], "accuracy": best_test["test_accuracy"]}
        if proc.main:
            val = f"val loss {val_loss:.4f} acc {val_acc:.3f} | " if val_acc is not None else ""
            tqdm.write(
                f"epoch {epoch}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} | {val}"
                f"test loss {test_loss:.4f} acc {test_acc:.3f} ({row['seconds']:.1f}s)"
            )
            tqdm.write(f"  {format_rates(inside)}")
            warning = silent_warning(inside, epoch)
            if warning:
                tqdm.write(warning)
            if best_epoch == epoch:
                save_checkpoint(
                    run_dir / BEST,
                    net,
                    cfg,
                    train_set.classes,
                    {
                        "epoch": epoch,
                        "selection": selection,
                        "val_accuracy": val_acc,
                        "test_accuracy": test_acc,
                    },
                )
            save_checkpoint(
                run_dir / LAST,
                net,
                cfg,
                train_set.classes,
                {
                    "epoch": epoch,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": rng_state(gen),
                    "metrics": metrics,
                    "best_val_accuracy": best_acc,
                    "best_epoch": best_epoch,
                },
            )
            write_metrics(run_dir, metrics)
    monitor.close()
    if proc.distributed:
        dist.barrier()
    return metrics
