"""``python -m lava_runtime run --net FILE --dataset NAME ...``: deploy and measure."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lava_runtime.backends import BACKENDS
from lava_runtime.deploy import run_dataset
from lava_runtime.errors import RuntimeConfigError
from lava_runtime.report import write_report
from train.errors import DatasetError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lava_runtime", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an exported network on dataset samples and write a report",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--net", required=True, help="exported NetX HDF5 file")
    run.add_argument("--dataset", required=True, help="dataset name, e.g. synthgesture")
    run.add_argument("--split", default="test", help="dataset split")
    run.add_argument("--samples", type=int, default=16, help="number of samples to run")
    run.add_argument("--backend", default="sim", choices=BACKENDS, help="sim = Loihi2SimCfg fixed_pt")
    run.add_argument("--report", default=None, help="report JSON path (default: beside the net file)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report_path = Path(args.report) if args.report else Path(args.net).with_name("report.json")
    if not report_path.parent.is_dir():
        print(f"error: report folder {report_path.parent} does not exist", file=sys.stderr)
        return 2
    if args.samples < 1:
        print("error: --samples must be at least 1", file=sys.stderr)
        return 2
    try:
        report = run_dataset(args.net, args.dataset, args.split, args.samples, args.backend)
    except (RuntimeConfigError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_report(report, report_path)
    print(f"{report['samples']} samples on {report['backend']}: accuracy {report['accuracy']:.3f}, "
          f"{report['totals']['spikes']} spikes, {report['steps_per_s']:.1f} steps/s")
    for row in report["layers"]:
        print(f"  {row['name']:10s} neurons {row['neurons']:6d}  spikes {row['spikes']:8d}")
    print(f"report written to {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
