"""Export a training run for the chip: ``python export/to_netx.py --run runs/NAME --out model.net``.

The run's selected checkpoint is exported: ``best.pt`` (best validation epoch, or the last one
without validation), ``checkpoint.pt`` for older runs. SMA layers are calibrated on a seeded,
class-stratified subset of the training part and folded into one conv synapse with a
per-timestep gain (``--fold per-timestep``) or with the time-averaged gain in the weights
(``--fold static``, pure stock NetX). ``export.json`` beside the file records which checkpoint,
the accuracy of the dynamic, folded and fixed-point models and a layer table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chipnet.cli import Deprecated, add_fold_option, run_cli
from chipnet.errors import ConfigError, ExportError
from export.pipeline import export_run, format_table, write_nir_for
from train.rundir import RunDir

NIR_FOLDS = ("static", "as-exported")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--run", required=True, help="training run folder (exports its selected best.pt; checkpoint.pt for older runs)"
    )
    p.add_argument("--out", default=None, help="output NetX file (default: RUN/model.net)")
    add_fold_option(p, "how attention (SMA, MA) is folded: a gain per timestep, or its mean in the weights")
    p.add_argument(
        "--calib-samples",
        type=int,
        default=256,
        help="training samples for SMA calibration, a seeded class-stratified draw from the train part (default: 256)",
    )
    p.add_argument(
        "--verify-samples", type=int, default=None, help="test samples for export.json accuracies (default: all)"
    )
    p.add_argument("--onnx", action="store_true", help="also write the one-timestep ONNX model (OUT with .onnx)")
    p.add_argument("--nir", action="store_true", help="also write a NIR graph (OUT with .nir)")
    p.add_argument(
        "--nir-dt",
        type=float,
        default=1e-3,
        help="Euler step (s) the NIR file is written for: 1e-3 for Norse's default, 1e-4 for snnTorch (default: 1e-3)",
    )
    p.add_argument(
        "--nir-fold",
        default="static",
        choices=NIR_FOLDS,
        help="attention in the NIR file: gains folded into the weights (static, runs in NIR clients) or "
        "the exported form, per-timestep gains in metadata only (default: static)",
    )
    p.add_argument(
        "--nir-sma", dest="nir_fold", choices=NIR_FOLDS, action=Deprecated, metavar="--nir-fold", help=argparse.SUPPRESS
    )
    p.add_argument("--view", action="store_true", help="serve the ONNX model in Netron and print its address")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The ``export/to_netx.py`` command (``sma-export``): its exit status."""
    return run_cli(_export, argv)


def _export(argv: list[str] | None) -> int:
    args = parse_args(argv)
    run = RunDir(args.run)
    out = Path(args.out) if args.out else run.model_net
    run.checkpoint()  # a folder that is no run fails here, before any work
    if not out.parent.is_dir():
        raise ExportError(f"output folder {out.parent} does not exist")
    if not args.nir_dt > 0:
        raise ConfigError(f"--nir-dt must be a positive step in seconds, got {args.nir_dt}")
    if args.calib_samples < 1 or (args.verify_samples is not None and args.verify_samples < 1):
        raise ConfigError("--calib-samples and --verify-samples must be at least 1")
    report, _, netfile = export_run(args.run, out, args.fold, args.calib_samples, args.verify_samples)
    print(format_table(report))
    print(f"wrote {out} and {out.with_name(RunDir.EXPORT_JSON)}")
    onnx_path = out.with_suffix(".onnx")
    if args.onnx or args.view:
        from export.onnx_graph import write_onnx

        write_onnx(netfile, onnx_path)
        print(f"wrote {onnx_path}")
    if args.nir:
        nir_path = write_nir_for(args.run, netfile, out, args.nir_fold, args.nir_dt, args.calib_samples)
        print(f"wrote {nir_path}")
    if args.view:
        import netron

        host, port = netron.start(str(onnx_path), ("127.0.0.1", 0), browse=False)
        print(f"Netron is serving {onnx_path} at http://{host}:{port} (Ctrl-C to stop)")
        try:
            netron.wait()
        except KeyboardInterrupt:
            netron.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
