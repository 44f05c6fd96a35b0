"""Train a spiking network: ``python train/run.py --dataset synthgesture --out runs/NAME``."""
from __future__ import annotations

import argparse
import sys

from train.config import load_config
from train.errors import CheckpointError, ConfigError, DatasetError
from train.loop import train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=None, help="dataset name (default: the config's, synthgesture)")
    p.add_argument("--config", default=None, help="YAML config file; options below override it")
    p.add_argument("--model", default=None, help="network: vgg")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the config's)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the config's)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the config's)")
    p.add_argument("--timesteps", type=int, default=None, help="time bins per sample (default: the config's)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: the config's)")
    p.add_argument("--out", default="runs/latest", help="run folder for checkpoint, metrics and config")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config)
        for name in ("dataset", "model", "epochs", "batch_size", "lr", "timesteps", "seed", "device"):
            value = getattr(args, name)
            if value is not None:
                setattr(cfg, name, value)
        metrics = train(cfg, args.out)
    except (ConfigError, DatasetError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"test accuracy {metrics['test_accuracy']:.3f}; run written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
