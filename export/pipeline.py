"""Turn a training run into deployable files: fold SMA, write NetX HDF5 (+ ONNX, NIR), verify."""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch

from export.constraints import SOURCES, check, footprint
from export.netx import ExportError, write_netx
from export.verify import accuracy_table, fixed_point_accuracy, torch_accuracy
from lava_runtime.errors import RuntimeConfigError
from lava_runtime.netfile import NetFile, read_net
from train.atomic import atomic_write_json
from train.loop import load_checkpoint, load_datasets
from train.models.fold import calibrate_on, fold_network, sma_blocks

SMA_MODES = ("per-timestep", "static")


def write_checked(net: torch.nn.Module, out: Path, metadata: dict[str, Any]) -> NetFile:
    """Write the NetX file, read it back with the runtime's validator, check Loihi limits, then publish."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.check")
    try:
        write_netx(net, tmp, metadata)
        netfile = read_net(tmp)
        check(netfile)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    netfile.path = str(out)
    return netfile


def export_run(
    run_dir: str | Path,
    out: str | Path,
    sma: str = "per-timestep",
    calib_samples: int = 256,
    verify_samples: int | None = None,
) -> tuple[dict[str, Any], torch.nn.Module, NetFile]:
    """Fold, write and verify one run; returns the ``export.json`` content, folded model, file."""
    if sma not in SMA_MODES:
        raise ExportError(f"--sma must be one of {SMA_MODES}, got {sma!r}")
    t0 = time.perf_counter()
    out = Path(out)
    net, cfg, state = load_checkpoint(run_dir)
    if cfg.folded != "none":  # a fine-tuned fold is exported as trained, whatever --sma says
        sma = cfg.folded
    report: dict[str, Any] = {"run": str(run_dir), "file": str(out), "model": cfg.model, "sma_mode": sma}
    folded, errors = net, []
    train_set, test_set = load_datasets(cfg)  # raw .spikes arrays: augmentation acts only in __getitem__
    if sma_blocks(net):
        calib = train_set.spikes[:calib_samples]
        stats = calibrate_on(net, calib)
        folded, errors = fold_network(net, stats, per_timestep=sma == "per-timestep")
        report["calibration_samples"] = len(calib)
    report["fold_rel_error"] = errors
    meta = {
        "timesteps": cfg.timesteps,
        "input_shape": [2, cfg.input_size, cfg.input_size],
        "classes": state["classes"],
        "dataset": cfg.dataset,
        "dataset_options": cfg.dataset_options,
        "model": cfg.model,
        "sma": sma if errors or cfg.folded != "none" else None,
    }
    try:
        netfile = write_checked(folded, out, meta)
    except RuntimeConfigError as e:
        raise ExportError(f"{out}: the written file does not validate: {e}") from None
    spikes, labels = test_set.spikes[:verify_samples], test_set.labels[:verify_samples]
    report["verify_samples"] = len(labels)
    report["accuracy"] = accuracy_table(
        torch_accuracy(net, spikes, labels),
        torch_accuracy(folded, spikes, labels),
        fixed_point_accuracy(netfile, spikes, labels),
    )
    report["layers"] = [dataclasses.asdict(row) for row in footprint(netfile)]
    report["cores_estimate"] = sum(row["cores"] for row in report["layers"])
    report["limits_sources"] = SOURCES
    report["seconds"] = time.perf_counter() - t0
    atomic_write_json(out.with_name("export.json"), report)
    return report, folded, netfile


def static_fold_file(run_dir: str | Path, out: str | Path, calib_samples: int = 256) -> NetFile:
    """The run's SMA layers folded with their time-averaged gain in the weights (``--sma static``), written to ``out``.

    For clients that cannot apply a per-timestep gain (NIR readers): the calibration is the
    export's (the first ``calib_samples`` training samples), so the fold is ``--sma static``'s.
    """
    net, cfg, state = load_checkpoint(run_dir)
    if not sma_blocks(net):
        if cfg.folded == "per-timestep":
            raise ExportError(f"{run_dir}: fine-tuned with a per-timestep fold; it has no static form "
                              "(use --nir-sma as-exported, whose gains NIR clients ignore)")
        raise ExportError(f"{run_dir}: has no SMA layers to fold")
    train_set, _ = load_datasets(cfg)
    stats = calibrate_on(net, train_set.spikes[:calib_samples])
    folded, _ = fold_network(net, stats, per_timestep=False)
    meta = {"timesteps": cfg.timesteps, "input_shape": [2, cfg.input_size, cfg.input_size],
            "classes": state["classes"], "dataset": cfg.dataset, "dataset_options": cfg.dataset_options,
            "model": cfg.model, "sma": "static"}
    try:
        return write_checked(folded, Path(out), meta)
    except RuntimeConfigError as e:
        raise ExportError(f"{out}: the written file does not validate: {e}") from None


def write_nir_for(run_dir: str | Path, netfile: NetFile, out: Path, nir_sma: str, dt: float,
                  calib_samples: int = 256) -> Path:
    """Write ``out`` with ``.nir``: ``netfile`` itself, or with ``nir_sma="static"`` its static SMA fold if it has gains."""
    from export.nir_graph import write_nir

    nir_net = netfile
    if nir_sma == "static" and any(layer.gain is not None for layer in netfile.layers):
        tmp = out.with_name(f".{out.stem}.{os.getpid()}.static.net")
        try:
            nir_net = static_fold_file(run_dir, tmp, calib_samples)
        finally:
            tmp.unlink(missing_ok=True)
    return write_nir(nir_net, out.with_suffix(".nir"), dt)


def format_table(report: dict[str, Any]) -> str:
    """The layer table and accuracies as text, for the terminal."""
    head = f"{'layer':10s} {'in':>14s} {'out':>14s} {'neurons':>8s} {'synapses':>10s} {'fan-in':>7s} {'wbits':>5s} {'wexp':>4s} {'cores':>5s}"
    lines = [head, "-" * len(head)]
    for r in report["layers"]:
        lines.append(f"{r['name']:10s} {str(r['input_shape']):>14s} {str(r['output_shape']):>14s} {r['neurons']:8d} "
                     f"{r['synapses']:10d} {r['fan_in']:7d} {r['weight_bits']:5d} {r['weight_exp']:4d} {r['cores']:5d}")
    a = report["accuracy"]
    lines.append(f"estimated Loihi 2 cores: {report['cores_estimate']}")
    lines.append(f"accuracy on {report['verify_samples']} test samples: dynamic {a['dynamic']:.4f} → folded "
                 f"{a['folded_float']:.4f} → fixed point {a['fixed_point']:.4f} (total drop {a['drop_total_pp']:.2f} pp)")
    if report["fold_rel_error"]:
        lines.append("SMA factorisation relative error per layer: " + ", ".join(f"{e:.4f}" for e in report["fold_rel_error"]))
    return "\n".join(lines)
