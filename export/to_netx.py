"""Export a training run to NetX HDF5: ``python export/to_netx.py --run runs/NAME --out model.net``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.netx import ExportError, write_netx
from train.errors import CheckpointError, ConfigError
from train.loop import load_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True, help="training run folder (holds checkpoint.pt)")
    p.add_argument("--out", default=None, help="output NetX file (default: RUN/model.net)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else Path(args.run) / "model.net"
    try:
        net, cfg, state = load_checkpoint(args.run)
        meta = {
            "timesteps": cfg.timesteps,
            "input_shape": [2, cfg.input_size, cfg.input_size],
            "classes": state["classes"],
            "dataset": cfg.dataset,
            "dataset_options": cfg.dataset_options,
            "model": cfg.model,
        }
        write_netx(net, out, meta)
    except (CheckpointError, ConfigError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
