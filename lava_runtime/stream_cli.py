"""The ``stream`` subcommand: options checked, the stream run, the summary printed and written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chipnet.cli import EXIT_INTERRUPTED
from chipnet.errors import RuntimeConfigError
from chipnet.formats import parse_gesture_labels, read_bytes
from lava_runtime.backends import get_backend
from lava_runtime.event_sources import open_source
from lava_runtime.runner import as_netfile
from lava_runtime.stream import default_period_us, run_stream, sensor_map, trained_sensor, write_summary


def _crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise RuntimeConfigError(f"--crop {text}: expected X,Y,W,H (four non-negative integers)")
    x, y, w, h = (int(p) for p in parts)
    return x, y, w, h


def format_summary(summary: dict) -> str:
    """The end summary as a few human lines."""
    lat = summary["latency_ms"]
    ms = " ".join(f"{k} {v:.2f}" if v is not None else f"{k} n/a" for k, v in lat.items())
    rtf = summary["realtime_factor"]
    filtered = summary["events_filtered_out"]
    lines = [
        f"{summary['events']} events, {summary['frames']} frames, {summary['decisions']} decisions, "
        f"{summary['dropped_frames']} dropped frames"
        + (f", {filtered} events removed by the noise filter" if filtered is not None else ""),
        f"decision latency ms: {ms}",
        f"{summary['stream_s']:.3f} s of stream in {summary['wall_s']:.3f} s: real-time factor "
        + (f"{rtf:.2f}" if rtf is not None else "n/a"),
    ]
    return "\n".join(lines)


def stream_command(args: argparse.Namespace) -> int:
    """Run ``stream``: 0, 2 (after the summary) if the source failed mid-way, 130 if it was stopped."""
    net = as_netfile(args.net)
    if len(net.input_shape) != 3 or net.input_shape[0] != 2 or net.input_shape[1] != net.input_shape[2]:
        raise RuntimeConfigError(f"{args.net}: stream needs a [2, H, H] event-frame input, not {list(net.input_shape)}")
    if not net.timesteps:
        raise RuntimeConfigError(f"{args.net}: lacks timesteps metadata (export it with export/to_netx.py)")
    if net.metadata.get("binning", "time") != "time":
        raise RuntimeConfigError(
            f"{args.net}: trained on frames of equal event count; stream cuts frames of equal time only"
        )
    if net.sigma_delta:
        raise RuntimeConfigError(f"{args.net}: sigma-delta networks are never reset; stream runs resetting networks")
    backend = get_backend(args.backend)
    if backend.needs_lava:
        backend.run_config()  # a backend this machine lacks fails before the source is opened
    period = args.frame_us if args.frame_us is not None else default_period_us(net)
    if period is None:
        raise RuntimeConfigError(f"{args.net}: its dataset's samples vary in length; give --frame-us")
    if period < 1:
        raise RuntimeConfigError("--frame-us must be at least 1")
    if args.max_queue is not None and args.max_queue < 1:
        raise RuntimeConfigError("--max-queue must be at least 1")
    labels = None
    if args.labels is not None:
        labels = parse_gesture_labels(
            read_bytes(args.labels), args.labels, len(net.metadata.get("classes") or [0] * 11)
        )
    out_path = Path(args.out) if args.out else None
    if out_path is not None and not out_path.resolve().parent.is_dir():
        raise RuntimeConfigError(f"output folder {out_path.parent} does not exist")
    source = open_source(args.source)
    if args.noise_filter is not None:
        if args.noise_filter < 1:
            raise RuntimeConfigError("--noise-filter must be at least 1 µs")
        source.set_noise_filter(args.noise_filter)
    mapping = sensor_map(
        source.name, source.resolution, trained_sensor(net), int(net.input_shape[-1]), _crop(args.crop), args.downsample
    )
    out = out_path.open("w", encoding="utf-8") if out_path is not None else None
    try:
        stats = run_stream(
            net,
            source,
            mapping,
            period,
            backend=args.backend,
            every=args.every,
            reset=args.reset,
            start_us=args.start_us,
            realtime=args.realtime,
            max_queue=args.max_queue,
            labels=labels,
            out=out,
            echo=None if args.quiet else sys.stdout,
        )
    finally:
        if out is not None:
            out.close()
    summary = stats.summary()
    print(format_summary(summary), file=sys.stderr)
    if out_path is not None:
        write_summary(stats, out_path.with_suffix(".summary.json"))
        from lava_runtime.stream_plot import plot_timeline

        plot_timeline(stats, out_path.with_suffix(".png"), list(net.metadata.get("classes") or []))
        print(f"decisions in {out_path}, summary and timeline beside it", file=sys.stderr)
    if stats.interrupted:
        print("interrupted: the stream was stopped; the decisions so far are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    if stats.error is not None:
        raise RuntimeConfigError(stats.error)
    return 0
