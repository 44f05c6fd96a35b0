"""Train a spiking network: ``python train/run.py --dataset synthgesture --out runs/NAME``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chipnet.cli import run_cli
from train.config import add_option_flags, flag_options, load_config, with_options
from train.data import download_dataset
from train.data.summary import inspect_dataset
from train.loop import train
from train.rundir import RunDir

HELP = {
    "dataset": "dataset name (default: the config's, synthgesture)",
    "model": "network: vgg, vgg7 (7×7 convs where SMA would be), sma-vgg, sma-azo-vgg or ma-vgg (MA-SNN attention) "
    "(default: the config's)",
    "epochs": "training epochs (default: the config's)",
    "batch_size": "batch size (default: the config's)",
    "optim.lr": "AdamW learning rate (default: the config's; --lr is the same flag)",
    "timesteps": "time bins per sample (default: the config's)",
    "seed": "random seed (default: the config's)",
    "val_fraction": "share of the training split held out for choosing best.pt (DVS Gesture: whole users); "
    "0 = none, best.pt is the last epoch (default: the config's, 0.1)",
    "device": "cpu or cuda; under torchrun each process takes cuda:LOCAL_RANK (default: the config's)",
    "data_root": "folder holding on-disk datasets (default: the config's, data/)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML config file; the options below override it")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint.pt (its config.yaml is the base config)",
    )
    p.add_argument("--out", default="runs/latest", help="run folder for checkpoint, metrics and config")
    p.add_argument(
        "--download",
        action="store_true",
        help="download the dataset into --data-root first (through tonic, where it can)",
    )
    p.add_argument(
        "--inspect",
        action="store_true",
        help="print the dataset's splits, class counts and first samples as JSON, "
        "write OUT/inspect-DATASET.png, and exit without training",
    )
    p.add_argument(
        "--finetune-static",
        action="store_true",
        help="deprecated: forwards the other options to train/finetune.py (python train/finetune.py --help)",
    )
    add_option_flags(p, HELP)
    p.add_argument("--lr", dest="optim.lr", type=float, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The ``train/run.py`` command (``sma-train``): its exit status."""
    return run_cli(_train, argv)


def _train(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--finetune-static" in argv:  # deprecated alias of train/finetune.py
        from train import finetune

        print("warning: train/run.py --finetune-static is deprecated; use python train/finetune.py", file=sys.stderr)
        return finetune.main([a for a in argv if a != "--finetune-static"])
    args = parse_args(argv)
    cfg = load_config(args.config if args.config or not args.resume else RunDir(args.out).config)
    cfg = with_options(cfg, flag_options(args), source="command line")
    if args.download:
        download_dataset(cfg.dataset, cfg.data_root)
    if args.inspect:
        png = Path(args.out) / f"inspect-{cfg.dataset}.png"
        print(json.dumps(inspect_dataset(cfg.dataset, cfg.data_root, cfg.dataset_options, png=png), indent=2))
        return 0
    metrics = train(cfg, args.out, resume=args.resume)
    selected = ""
    if "test_accuracy_selected" in metrics:  # a resumed run from before validation may have no new epoch
        selected = (
            f", {metrics['test_accuracy_selected']:.3f} (best.pt: epoch {metrics['best_epoch']}, "
            f"selection {metrics['selection']})"
        )
    best = metrics.get("test_accuracy_best_epoch")
    if best:  # the paper's protocol, beside ours: test chooses there, so it is optimistic
        selected += f"; best test epoch {best['epoch']}: {best['accuracy']:.3f} (paper protocol, optimistic)"
    print(f"test accuracy {metrics['test_accuracy']:.3f} (last epoch){selected}; run written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
