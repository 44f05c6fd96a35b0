"""``python -m lava_runtime run --net FILE --dataset NAME ...``: deploy and measure.

``python -m lava_runtime run --net FILE --input X.npy [--labels Y.npy] [--spikes OUT.npy]`` runs
arrays instead (``[N, C, H, W, T]`` or ``[N, F, T]`` integers) on any NetX file lava-dl writes.

``python -m lava_runtime compare REPORT_A REPORT_B`` prints two reports side by side.

``python -m lava_runtime validate --net FILE --dataset NAME --samples N`` runs the same samples
on ``sim`` and ``emu`` and prints how many output spike trains are identical (``--input X.npy``
instead of ``--dataset`` checks on arrays).

``python -m lava_runtime stream --net FILE --source SOURCE`` classifies a live event stream (an AEDAT4
or AEDAT 2.0/3.1 file, ``tcp://HOST:PORT`` of DV's network stream, or ``camera``) and prints one JSON
line per decision (``lava_runtime/stream.py``).

The check of the report's NeuroBench-style metrics against the real ``neurobench`` library
refolds a trained run, so it lives beside the export: ``python -m export.neurobench --run RUN``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chipnet.cli import run_cli
from chipnet.errors import RuntimeConfigError
from lava_runtime.backends import BACKENDS, STREAM_BACKENDS
from lava_runtime.energy import DEFAULT_MODEL
from lava_runtime.report import compare_reports, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lava_runtime", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run an exported network on dataset samples and write a report",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument("--net", required=True, help="exported NetX HDF5 file")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="dataset name, e.g. synthgesture")
    source.add_argument("--input", help="input array .npy: [N, C, H, W, T] or [N, F, T] integers")
    run.add_argument("--labels", default=None, help="with --input: int labels .npy [N] (accuracy)")
    run.add_argument(
        "--spikes",
        default=None,
        help="save the output layer [N, *output_shape, T] to this .npy (its spikes; a voltage readout's voltage)",
    )
    run.add_argument("--data-root", default=None, help="folder of downloaded datasets (default: data/)")
    run.add_argument("--split", default="test", help="dataset split")
    run.add_argument("--samples", type=int, default=16, help="number of samples to run")
    run.add_argument(
        "--backend",
        default="sim",
        choices=list(BACKENDS),
        help="sim = Loihi2SimCfg fixed_pt; emu = batched torch emulator of the same arithmetic",
    )
    run.add_argument("--report", default=None, help="report JSON path (default: beside the net file)")
    run.add_argument(
        "--energy-model",
        default=str(DEFAULT_MODEL),
        help="YAML of per-operation energies, each with its source (see lava_runtime/energy_models/)",
    )
    cmp = sub.add_parser("compare", help="print two reports side by side")
    cmp.add_argument("reports", nargs=2, metavar="REPORT", help="report.json files written by run")
    val = sub.add_parser(
        "validate",
        help="run the same samples on sim and emu and compare every spike",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    val.add_argument("--net", required=True, help="exported NetX HDF5 file")
    vsource = val.add_mutually_exclusive_group(required=True)
    vsource.add_argument("--dataset", help="dataset name, e.g. synthgesture")
    vsource.add_argument("--input", help="input array .npy: [N, C, H, W, T] or [N, F, T] integers")
    val.add_argument("--data-root", default=None, help="folder of downloaded datasets (default: data/)")
    val.add_argument("--split", default="test", help="dataset split")
    val.add_argument("--samples", type=int, default=8, help="number of samples to run")
    st = sub.add_parser(
        "stream",
        help="classify a live event stream: a JSON line per decision, latency and real-time factor at the end",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    st.add_argument("--net", required=True, help="exported NetX HDF5 file")
    st.add_argument(
        "--source",
        required=True,
        help="an AEDAT4 or AEDAT 2.0/3.1 file, tcp://HOST:PORT (a DV network event stream) or camera[:SERIAL]",
    )
    st.add_argument("--backend", default="emu", choices=STREAM_BACKENDS, help="what runs the network")
    st.add_argument(
        "--every",
        default="window",
        choices=("window", "frame"),
        help="decide every T frames (disjoint windows) or at every frame (sliding window of the last T)",
    )
    st.add_argument(
        "--reset",
        default="window",
        choices=("window", "never"),
        help="window: every decision runs its T frames from zero state, as training ran each sample (matches "
        "training); never: one run over the whole stream that keeps its state (emu only)",
    )
    st.add_argument(
        "--frame-us",
        type=int,
        default=None,
        help="frame period in µs (default: the training dataset's sample duration / T, where it is fixed)",
    )
    st.add_argument(
        "--start-us",
        type=int,
        default=None,
        help="stream time (µs) where the frame grid starts, e.g. a labels CSV's first start (default: the first event)",
    )
    st.add_argument("--crop", default=None, metavar="X,Y,W,H", help="use only this region of the sensor")
    st.add_argument(
        "--downsample",
        action="store_true",
        help="pool a sensor of another size onto the network's input (default: refuse it)",
    )
    st.add_argument(
        "--noise-filter",
        type=int,
        default=None,
        metavar="US",
        help="dv-processing's background-activity filter: drop events with no neighbour event within US µs "
        "(not the training pipeline's denoise; off by default, as training's default)",
    )
    st.add_argument("--realtime", action="store_true", help="play a file at its recorded speed (drops frames)")
    st.add_argument(
        "--max-queue", type=int, default=None, help="frames waiting for the network before frames drop (default 4·T)"
    )
    st.add_argument("--labels", default=None, help="labels CSV in DVS Gesture's format (class,start_us,end_us)")
    st.add_argument(
        "--out",
        default=None,
        help="decisions as JSON lines, written as they come (summary beside it: .summary.json)",
    )
    st.add_argument("--quiet", action="store_true", help="do not echo the decisions on stdout")
    return p.parse_args(argv)


def validate(args: argparse.Namespace) -> int:
    """Print the share of samples whose output spike trains agree and the first mismatch; 1 if any."""
    if args.samples < 1:
        raise RuntimeConfigError("--samples must be at least 1")
    from lava_runtime.runner import as_netfile, load_arrays, validate_arrays, validate_dataset

    if args.input is not None:
        net = as_netfile(args.net)  # read once
        result = validate_arrays(net, load_arrays(net, args.input)[0])
    else:
        result = validate_dataset(args.net, args.dataset, args.split, args.samples, data_root=args.data_root)
    print(
        f"sim vs emu: {result.identical}/{result.samples} samples identical ({result.fraction:.3f}) in the output layer"
    )
    m = result.first_mismatch
    print(
        "first mismatch: none"
        if m is None
        else f"first mismatch: layer {m['layer']}, sample {m['sample']}, timestep {m['timestep']}, neuron {m['neuron']}"
    )
    return 0 if m is None else 1


def _load_report(path: str) -> dict:
    """A report written by ``run``; a clear error for anything else."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeConfigError(f"{path}: report not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RuntimeConfigError(f"{path}: not a readable report ({e})") from None
    if not isinstance(report, dict) or not isinstance(report.get("layers"), list):
        raise RuntimeConfigError(f"{path}: not a report written by 'python -m lava_runtime run'")
    return report


def compare(paths: list[str]) -> int:
    """Print the two reports side by side."""
    a, b = (_load_report(p) for p in paths)
    print(compare_reports(a, b, (Path(paths[0]).parent.name or paths[0], Path(paths[1]).parent.name or paths[1])))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``python -m lava_runtime`` command (``sma-lava``): its exit status.

    SIGTERM anywhere (not only mid-run) ends like Ctrl-C: cleanup runs, exit 130, no traceback.
    """
    return run_cli(_main, argv, interrupted="interrupted: the Lava runtime was stopped, no report written")


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    if args.command == "compare":
        return compare(args.reports)
    if args.command == "validate":
        return validate(args)
    if args.command == "stream":
        from lava_runtime.stream_cli import stream_command

        return stream_command(args)
    report_path = Path(args.report) if args.report else Path(args.net).with_name("report.json")
    if not report_path.parent.is_dir():
        raise RuntimeConfigError(f"report folder {report_path.parent} does not exist")
    if args.samples < 1:
        raise RuntimeConfigError("--samples must be at least 1")
    if args.labels is not None and args.input is None:
        raise RuntimeConfigError("--labels goes with --input (a dataset has its own labels)")
    if args.spikes is not None and not Path(args.spikes).resolve().parent.is_dir():
        raise RuntimeConfigError(f"spikes folder {Path(args.spikes).parent} does not exist")
    # Loaded here, not at the top: ``compare`` reads two JSON files and needs no torch or datasets.
    from lava_runtime.runner import as_netfile, load_arrays, run_arrays, run_dataset

    # Ctrl-C or SIGTERM leaves through run_cli once the Lava runtime has been stopped on the way out.
    if args.input is not None:
        net = as_netfile(args.net)  # read once
        x, labels = load_arrays(net, args.input, args.labels)
        report = run_arrays(
            net,
            x,
            labels,
            args.backend,
            energy_model=args.energy_model,
            progress=True,
            info={"net": str(args.net), "input": str(args.input)},
            spikes_out=args.spikes,
        )
    else:
        report = run_dataset(
            args.net,
            args.dataset,
            args.split,
            args.samples,
            args.backend,
            energy_model=args.energy_model,
            progress=True,
            data_root=args.data_root,
            spikes_out=args.spikes,
        )
    write_report(report, report_path)
    totals = report["totals"]
    accuracy = "n/a (no labels)" if report["accuracy"] is None else f"{report['accuracy']:.3f}"
    print(
        f"{report['samples']} samples on {report['backend']}: accuracy {accuracy}, "
        f"{totals['spikes']} spikes, {report['steps_per_s']:.1f} steps/s"
    )
    for row in report["layers"]:
        print(
            f"  {row['name']:10s} neurons {row['neurons']:6d}  spikes {row['spikes']:8d}  synops {row['synops'] or 0:10d}"
        )
    if totals.get("energy_per_inference_j") is not None:
        print(f"energy per inference {totals['energy_per_inference_j']:.3g} J ({report['energy_model']['name']})")
    if args.spikes is not None:
        print(f"{report['output_file']['holds']} written to {args.spikes}")
    print(f"report written to {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
