"""Deploy-aware fine-tuning: train the folded form of an SMA run (merged kernels and gains).

``python train/finetune.py --run runs/SMA --epochs 3`` (``sma-finetune``) writes
``runs/SMA-finetuned`` unless ``--out`` says otherwise.

Folding replaces data-dependent attention by its calibrated average, which costs some accuracy;
training the folded network itself for a few epochs wins it back. The result is an ordinary run
folder (``config.yaml`` says ``folded: per-timestep`` or ``static``) that ``export/to_netx.py``
writes as it is, without folding again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chipnet.cli import FOLD_MODES, add_fold_option, run_cli
from chipnet.errors import ConfigError
from train.config import with_options
from train.data import calibration_spikes
from train.loop import load_datasets, load_selected, train
from train.models.fold import attention_blocks, calibrate_on, fold_network


def finetune(
    run_dir: str | Path,
    out_dir: str | Path,
    epochs: int,
    fold: str = "per-timestep",
    calib_samples: int = 256,
    lr: float | None = None,
) -> dict[str, Any]:
    """Calibrate and fold ``run_dir``'s selected model (``best.pt``), then train the folded form for ``epochs`` into ``out_dir``."""
    if fold not in FOLD_MODES:
        raise ConfigError(f"--fold must be one of {FOLD_MODES}, got {fold!r}")
    net, cfg, _, _ = load_selected(run_dir)
    if not attention_blocks(net):
        raise ConfigError(f"{run_dir}: model {cfg.model!r} has no attention blocks to fold (folded={cfg.folded!r})")
    train_set = load_datasets(cfg)[0]  # the train part: the run's validation samples stay held out
    stats = calibrate_on(net, calibration_spikes(train_set, calib_samples, cfg.seed))
    folded, _ = fold_network(net, stats, per_timestep=fold == "per-timestep")
    # A gentler learning rate: the folded weights start close to a good solution.
    optim = {"lr": lr if lr is not None else cfg.optim.lr / 10, "scheduler": "cosine"}
    tuned = with_options(cfg, {"folded": fold, "epochs": epochs, "optim": optim}, source="finetune")
    return train(tuned, out_dir, init_state=folded.state_dict())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the trained SMA run folder")
    p.add_argument("--epochs", type=int, required=True, help="epochs to train the folded form")
    p.add_argument("--out", default=None, help="run folder to write (default: RUN-finetuned)")
    add_fold_option(p, "keep the per-timestep gain schedule or fold its mean into the weights")
    p.add_argument(
        "--calib-samples",
        type=int,
        default=256,
        help="training samples for calibration, seeded and class-stratified (default: 256)",
    )
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the run's / 10)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The ``train/finetune.py`` command (``sma-finetune``): its exit status."""
    return run_cli(_finetune, argv)


def _finetune(argv: list[str] | None) -> int:
    args = parse_args(argv)
    out = args.out if args.out is not None else f"{args.run.rstrip('/')}-finetuned"
    metrics = finetune(args.run, out, args.epochs, args.fold, args.calib_samples, args.lr)
    print(f"folded ({args.fold}) test accuracy {metrics['test_accuracy']:.3f}; run written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
