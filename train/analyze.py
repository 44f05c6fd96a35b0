"""Plot the paper's analyses of a trained SMA run: ``python train/analyze.py --run runs/SMA --baseline runs/VGG``.

Writes ``scale_importance_block<i>.png`` (mean attention share of each kernel size per class, the
paper's Fig. 5), ``spike_rates.png`` (spike-rate maps of the first SMA layer next to the same
layer of the plain VGG, Fig. 3) and ``analysis.json`` with the numbers, into ``--out``.
"""

from __future__ import annotations

import argparse
import sys

from chipnet.cli import run_cli
from train.analysis import analyze
from train.rundir import RunDir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True, help="run folder of an sma-vgg or sma-azo-vgg training")
    p.add_argument(
        "--baseline", default=None, help="run folder of a plain vgg on the same data, for the spike-rate maps"
    )
    p.add_argument("--out", default=None, help="folder for the figures and analysis.json (default: --run)")
    p.add_argument(
        "--checkpoint", default=RunDir.LAST, help="checkpoint file in the run folders (checkpoint.pt or best.pt)"
    )
    p.add_argument("--samples", type=int, default=256, help="test samples to average over")
    p.add_argument("--show", type=int, default=4, help="samples shown in the spike-rate figure")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The ``train/analyze.py`` command (``sma-analyze``): its exit status."""
    return run_cli(_analyze, argv)


def _analyze(argv: list[str] | None) -> int:
    args = parse_args(argv)
    result = analyze(args.run, args.out, args.baseline, args.checkpoint, args.samples, args.show)
    rates = ", ".join(f"{k} {v:.4f}" for k, v in result["spike_rates"].items() if k != "block")
    print(
        f"analysed {result['samples']} test samples; spike rate of block {result['spike_rates']['block']}: {rates}; "
        f"written to {args.out or args.run}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
