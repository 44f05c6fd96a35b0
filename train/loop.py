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
from train.config import TrainConfig, with_options
from train.data import Augment, FrameDataset, FrameSubset
from train.data.splits import validation_split
from train.models import build_model, check_options
from train.models.readout import make_loss
from train.monitor import EpochMonitor, format_rates, silent_warning
from train.rundir import RunDir

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


def _read_state(run: RunDir, name: str) -> dict[str, Any]:
    """The contents of checkpoint ``name`` of ``run``, with errors that name the file."""
    path = run.checkpoint(name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean the same thing here
        raise CheckpointError(f"{path}: not a readable checkpoint: {e}") from None
    if not isinstance(state, dict) or not {"model", "config", "classes"} <= set(state):
        raise CheckpointError(f"{path}: checkpoint lacks model/config/classes entries")
    return state


def load_checkpoint(
    run_dir: str | Path, name: str = RunDir.LAST
) -> tuple[torch.nn.Module, TrainConfig, dict[str, Any]]:
    """Rebuild the trained model of a run folder (``checkpoint.pt``, or ``best.pt``) in eval mode."""
    run = RunDir(run_dir)
    path = run.path / name
    state = _read_state(run, name)
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
    if RunDir(run_dir).best.exists():
        net, cfg, state = load_checkpoint(run_dir, RunDir.BEST)
        if "selection" in state:
            return net, cfg, state, RunDir.BEST
    return (*load_checkpoint(run_dir, RunDir.LAST), RunDir.LAST)


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
    """AdamW with ``cfg.optim.weight_decay`` and the epoch-wise lr schedule ``cfg.optim.scheduler``."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))


def lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    """Factor on ``cfg.optim.lr`` after ``epoch`` epochs, in closed form so a resume with more epochs stays smooth.

    ``warmup_epochs`` ramp it linearly from ``1/(w+1)`` to 1; the schedule then runs over the rest.
    """
    w = cfg.optim.warmup_epochs
    if cfg.optim.scheduler == "cosine":
        span = max(cfg.epochs - w, 1)
        after = lambda e: 0.5 * (1.0 + math.cos(math.pi * min(e - w, span) / span))  # noqa: E731
    elif cfg.optim.scheduler == "none":
        after = lambda e: 1.0  # noqa: E731
    else:
        raise ConfigError(f"unknown scheduler {cfg.optim.scheduler!r}; known: none, cosine")
    return lambda epoch: (epoch + 1) / (w + 1) if epoch < w else after(epoch)


def _check_resumable(cfg: TrainConfig, saved: dict[str, Any], path: Path) -> None:
    """Refuse to resume a run with options that would make it a different run."""
    if "val_fraction" not in saved:  # resuming would hold out a validation part the earlier epochs trained on
        raise ConfigError(
            f"{path}: the run predates validation (no val_fraction) and cannot be resumed; start a new run"
        )
    now = cfg.leaves()
    saved = with_options(TrainConfig(), saved, source=str(path)).leaves()  # options added since take their defaults
    changed = [k for k in now if k not in RESUMABLE_CHANGES and now[k] != saved.get(k)]
    if changed:
        detail = ", ".join(
            f"{cfg.option_name(*k.split('.')) if '.' in k else k}: {saved.get(k)!r} → {now[k]!r}" for k in changed
        )
        raise ConfigError(
            f"{path}: cannot resume with changed options ({detail}); only {sorted(RESUMABLE_CHANGES)} may change"
        )


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """``metrics.json``, ``metrics.csv``, ``curves.png`` and ``layers.png``, each written atomically."""
    from train.plots import layer_health, training_curves  # matplotlib only where figures are drawn

    run = RunDir(run_dir)
    atomic_write_json(run.metrics_json, metrics)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(metrics["epochs"])
    atomic_write(run.metrics_csv, lambda fh: fh.write(text.getvalue().encode()))
    training_curves(metrics, run.curves)
    layer_health(metrics, run.layers)


@dataclass
class Loaders:
    """A run's data loaders; under ``torchrun`` each process loads its share."""

    train: torch.utils.data.DataLoader
    sampler: torch.utils.data.DistributedSampler | None  # set to each epoch under torchrun
    val: torch.utils.data.DataLoader | None
    test: torch.utils.data.DataLoader
    generator: torch.Generator  # the train shuffle's, saved and restored with the other RNGs
    classes: tuple[str, ...]
    val_samples: int


@dataclass
class Selection:
    """The selected epoch (``best.pt``): the best validation accuracy, or the last epoch without validation.

    Test accuracy never chooses. Only a strictly better validation accuracy wins: a tie keeps the earlier epoch.
    """

    by: str  # "val_accuracy" or "last"
    best_acc: float = -1.0
    best_epoch: int = 0

    def update(self, epoch: int, val_acc: float | None) -> None:
        """Take ``epoch``'s validation accuracy (``None`` without validation)."""
        if val_acc is None:
            self.best_epoch = epoch
        elif val_acc > self.best_acc:
            self.best_acc, self.best_epoch = val_acc, epoch


def _start_run(cfg: TrainConfig, run: RunDir, proc: Process, resume: bool) -> tuple[Any, dict[str, Any] | None]:
    """Check ``cfg``, read the state to resume from and write ``config.yaml``: the loss function and that state."""
    # Choices that would only fail later are checked before anything is binned.
    try:
        loss_fn = make_loss(cfg.readout.kind, cfg.readout.loss, cfg.readout.true_rate, cfg.readout.false_rate)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    check_options(cfg)
    lr_factor(cfg)
    saved: dict[str, Any] | None = None
    if resume:
        saved = _read_state(run, RunDir.LAST)
        if "optimizer" not in saved:
            raise CheckpointError(f"{run.last}: has no optimizer/scheduler/RNG state to resume from")
        _check_resumable(cfg, saved["config"], run.last)
    if proc.main:
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write(run.config, lambda fh: fh.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()))
    return loss_fn, saved


def _loaders(cfg: TrainConfig, proc: Process) -> Loaders:
    """The train, validation and test loaders of ``cfg``'s splits."""
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
    return Loaders(
        train=train_loader,
        sampler=sampler,
        val=eval_loader(val_set) if val_set is not None else None,
        test=eval_loader(test_set),
        generator=gen,
        classes=train_set.classes,
        val_samples=len(val_set) if val_set is not None else 0,
    )


def _restore(
    cfg: TrainConfig,
    proc: Process,
    num_classes: int,
    saved: dict[str, Any] | None,
    init_state: dict[str, torch.Tensor] | None,
) -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    """The model on ``proc.device`` with its optimizer and lr schedule: fresh, from ``init_state``, or resumed."""
    net = build_model(cfg, num_classes=num_classes)
    net.materialize()
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
    return net, optimizer, scheduler


def _progress(
    cfg: TrainConfig, proc: Process, data: Loaders, saved: dict[str, Any] | None
) -> tuple[dict[str, Any], Selection, int]:
    """The metrics so far, the selection so far and the first epoch to train."""
    # Test accuracy is only reported: the selected epoch is the best on validation, else the last.
    selection = Selection("val_accuracy" if data.val is not None else "last")
    if saved is None:
        metrics = {
            "dataset": cfg.dataset,
            "model": cfg.model,
            "world_size": proc.world_size,
            "selection": selection.by,
            "val_samples": data.val_samples,
            "epochs": [],
        }
        return metrics, selection, 1
    selection.best_acc, selection.best_epoch = saved["best_val_accuracy"], saved["best_epoch"]
    return saved["metrics"], selection, saved["epoch"] + 1


def _distribute(net: torch.nn.Module, proc: Process) -> torch.nn.Module:
    """``net`` wrapped in DistributedDataParallel under torchrun, else ``net`` itself."""
    if not proc.distributed:
        return net
    ids = [proc.device.index] if proc.device.type == "cuda" else None
    # SLAYER's neuron state buffers are per-batch scratch, nothing to broadcast.
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


def _train_epoch(
    cfg: TrainConfig,
    proc: Process,
    epoch: int,
    model: torch.nn.Module,
    data: Loaders,
    loss_fn: Any,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    monitor: EpochMonitor,
    amp: bool,
) -> dict[str, float]:
    """One pass over the train loader: its mean loss and accuracy (summed over processes)."""
    if data.sampler is not None:
        data.sampler.set_epoch(epoch)
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    bar = progress_bar(data.train, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, enabled=proc.main)
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
        correct += int((predict(out, cfg.readout.kind) == y.cpu().numpy()).sum())
        total += len(y)
        bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{correct / total:.3f}")
    loss_sum, correct, total = _all_sum([loss_sum, correct, total], proc)
    return {"train_loss": loss_sum / max(total, 1), "train_accuracy": correct / max(total, 1)}


def _evaluate_epoch(
    net: torch.nn.Module, data: Loaders, loss_fn: Any, proc: Process, readout: str
) -> dict[str, float | None]:
    """Validation (``None`` without it) and test loss and accuracy."""
    val_loss, val_acc = (
        evaluate(net, data.val, loss_fn, proc.device, proc, readout) if data.val is not None else (None, None)
    )
    test_loss, test_acc = evaluate(net, data.test, loss_fn, proc.device, proc, readout)
    return {"val_loss": val_loss, "val_accuracy": val_acc, "test_loss": test_loss, "test_accuracy": test_acc}


def _epoch_metrics(metrics: dict[str, Any], row: dict[str, Any], selection: Selection) -> None:
    """Add ``row`` to ``metrics`` and update its summary: the selected epoch's scores, the last and the best test."""
    metrics["epochs"].append(row)
    selected = next(r for r in metrics["epochs"] if r["epoch"] == selection.best_epoch)
    metrics["best_epoch"], metrics["best_val_accuracy"] = selection.best_epoch, selected["val_accuracy"]
    metrics["test_accuracy_selected"], metrics["test_accuracy_last"] = selected["test_accuracy"], row["test_accuracy"]
    metrics["test_accuracy"] = row["test_accuracy"]  # the last epoch's, as before
    # The paper's protocol (the best test epoch): optimistic, since test then chooses; reported, never used.
    best_test = max(metrics["epochs"], key=lambda r: r["test_accuracy"])
    metrics["test_accuracy_best_epoch"] = {"epoch": best_test["epoch"], "accuracy": best_test["test_accuracy"]}


def _print_epoch(row: dict[str, Any]) -> None:
    """The epoch's scores, firing rates and gradient norms, and a warning if the output stayed silent."""
    val = f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.3f} | " if row["val_accuracy"] is not None else ""
    tqdm.write(
        f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} | {val}"
        f"test loss {row['test_loss']:.4f} acc {row['test_accuracy']:.3f} ({row['seconds']:.1f}s)"
    )
    tqdm.write(f"  {format_rates(row)}")
    warning = silent_warning(row, row["epoch"])
    if warning:
        tqdm.write(warning)


def _save_epoch(
    run: RunDir,
    cfg: TrainConfig,
    net: torch.nn.Module,
    data: Loaders,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    metrics: dict[str, Any],
    selection: Selection,
) -> None:
    """``best.pt`` if this epoch is the selected one, ``checkpoint.pt`` with all it takes to resume, and the metrics."""
    row = metrics["epochs"][-1]
    if selection.best_epoch == row["epoch"]:
        best = {
            "epoch": row["epoch"],
            "selection": selection.by,
            "val_accuracy": row["val_accuracy"],
            "test_accuracy": row["test_accuracy"],
        }
        save_checkpoint(run.best, net, cfg, data.classes, best)
    last = {
        "epoch": row["epoch"],
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(data.generator),
        "metrics": metrics,
        "best_val_accuracy": selection.best_acc,
        "best_epoch": selection.best_epoch,
    }
    save_checkpoint(run.last, net, cfg, data.classes, last)
    write_metrics(run.path, metrics)


def train(
    cfg: TrainConfig, out_dir: str | Path, resume: bool = False, init_state: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir``; with ``resume``, continue from its ``checkpoint.pt``.

    ``init_state`` starts a new run from given weights (deploy-aware fine-tuning of a fold).
    """
    proc = setup_process(cfg.device)
    run = RunDir(out_dir)
    loss_fn, saved = _start_run(cfg, run, proc, resume)
    seed_everything(cfg.seed)
    data = _loaders(cfg, proc)
    net, optimizer, scheduler = _restore(cfg, proc, len(data.classes), saved, init_state)
    metrics, selection, start = _progress(cfg, proc, data, saved)
    if saved is not None:
        set_rng_state(saved["rng"], data.generator)  # last: building the model above drew from the RNGs
    model = _distribute(net, proc)
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn = loss_fn.to(proc.device)
    monitor = EpochMonitor(net, cfg.readout.kind)
    amp = cfg.optim.amp and proc.device.type == "cuda"  # mixed precision needs CUDA; on CPU the flag is ignored
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    for epoch in range(start, cfg.epochs + 1):
        t0, lr = time.time(), optimizer.param_groups[0]["lr"]
        scores = _train_epoch(cfg, proc, epoch, model, data, loss_fn, optimizer, scaler, monitor, amp)
        scheduler.step()
        scores.update(_evaluate_epoch(net, data, loss_fn, proc, cfg.readout.kind))
        inside = monitor.summary()
        row = {"epoch": epoch, **scores, "lr": lr, "seconds": time.time() - t0, **inside}
        selection.update(epoch, row["val_accuracy"])
        _epoch_metrics(metrics, row, selection)
        if proc.main:
            _print_epoch(row)
            _save_epoch(run, cfg, net, data, optimizer, scheduler, metrics, selection)
    monitor.close()
    if proc.distributed:
        dist.barrier()
    return metrics
