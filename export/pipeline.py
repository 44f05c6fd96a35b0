"""Turn a training run into deployable files: fold SMA / MA attention, write NetX HDF5 (+ ONNX, NIR), verify."""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chipnet.atomic import atomic_write_json
from chipnet.cli import FOLD_MODES
from chipnet.errors import ExportError, RuntimeConfigError
from chipnet.netfile import read_net
from chipnet.netmodel import NetFile
from chipnet.netwriter import write_netx
from export.constraints import SOURCES, check, footprint
from export.verify import accuracy_table, fixed_point_accuracy, torch_accuracy
from export.weight_range import fill_weight_range
from lava_runtime.emu import emulate
from lava_runtime.energy import load_energy_model
from lava_runtime.report import build_report
from train.config import TrainConfig
from train.data import calibration_spikes
from train.loop import load_datasets, load_selected
from train.models.fold import attention_blocks, calibrate_on, check_foldable, fold_network, range_shift
from train.models.folded import FoldedConv
from train.models.norm import chip_norms, scale_neuron
from train.rundir import RunDir

COST_SAMPLES = 64  # test samples whose spikes, synops and energy export.json averages (emu, the file's fixed point)


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


def written(net: torch.nn.Module, metadata: dict[str, Any]) -> NetFile:
    """``net`` as the runtime reads it back from a NetX file (written to a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.net"
        write_netx(net, path, metadata)
        return read_net(path)


def static_form(net: torch.nn.Module) -> torch.nn.Module:
    """A folded network's ``--fold static`` form: each gain schedule's time mean moved into the weights."""
    static = copy.deepcopy(net)
    with torch.no_grad():
        for block in static.blocks:
            if isinstance(block, FoldedConv) and block.per_timestep:
                mean = block.quantized_gain().mean(dim=0)
                block.synapse.weight.mul_(mean.view(-1, 1, 1, 1, 1))
                shift = max(0, range_shift(float(block.synapse.weight.abs().max())))
                if shift:  # outgrew the 8-bit range: scale down, the threshold (and bias) take it back
                    block.synapse.weight.div_(2**shift)
                    scale_neuron(block, 2.0**-shift)
                block.per_timestep = False
                block.gain.fill_(1.0)
    return static.eval()


@dataclass
class DeployForms:
    """A run's selected checkpoint and the forms export derives from it."""

    net: torch.nn.Module  # the trained model (dynamic SMA or MA attention)
    cfg: TrainConfig
    state: dict[str, Any]
    checkpoint: str  # which file of the run: best.pt or checkpoint.pt
    sma: str  # per-timestep or static
    folded: torch.nn.Module  # what the file holds: folded, quantised, weight range filled
    exact: torch.nn.Module  # the fold with float merged kernels and gains (folded_float)
    static: torch.nn.Module | None  # the --fold static form (range filled) where the file has gains
    errors: list[float]  # fold error per attention layer (SMA: its factorisation; MA: 0)
    shifts: list[int]  # power of two each conv/dense layer's weights and threshold were scaled by
    calibration_samples: int

    def metadata(self, sma: str | None = None) -> dict[str, Any]:
        """The NetX file's attributes for this run (``sma`` overrides the form it names)."""
        cfg = self.cfg
        form = self.sma if self.errors or cfg.folded != "none" else None
        return {
            "timesteps": cfg.timesteps,
            "input_shape": [2, cfg.input_size, cfg.input_size],
            "classes": self.state["classes"],
            "dataset": cfg.dataset,
            "dataset_options": cfg.dataset_options,
            "model": cfg.model,
            "sma": sma or form,
            "readout": cfg.readout.kind,
            "binning": cfg.binning,
            "encoding": cfg.encoding,
        }


def deploy_forms(run_dir: str | Path, sma: str = "per-timestep", calib_samples: int = 256) -> DeployForms:
    """Load the run's selected checkpoint, calibrate (a seeded stratified training subset) and fold it."""
    if sma not in FOLD_MODES:
        raise ExportError(f"--fold must be one of {FOLD_MODES}, got {sma!r}")
    net, cfg, state, checkpoint = load_selected(run_dir)
    if cfg.folded != "none":  # a fine-tuned fold is exported as trained, whatever --fold says
        sma = cfg.folded
    # The chip form of every norm (bias, threshold) before folding and range filling, which scale it.
    chip = chip_norms(net)
    folded, exact, static, errors, calibrated = chip, net, None, [], 0
    if attention_blocks(net):
        check_foldable(net)  # before calibrating: a TCSA layer has no exact folded form
        train_set, _ = load_datasets(cfg)
        calib = calibration_spikes(train_set, calib_samples, cfg.seed)
        stats = calibrate_on(net, calib)
        folded, errors = fold_network(chip, stats, per_timestep=sma == "per-timestep")
        exact, _ = fold_network(net, stats, per_timestep=sma == "per-timestep", quantized=False)
        if sma == "per-timestep":  # what Loihi 2 runs today (gain neurons have no Loihi 2 model yet)
            static, _ = fold_network(chip, stats, per_timestep=False)
        calibrated = len(calib)
    elif cfg.folded == "per-timestep":  # a fine-tuned fold: its static form is the time-mean gain in the weights
        static = static_form(chip)
    folded, shifts = fill_weight_range(folded)
    static = fill_weight_range(static)[0] if static is not None else None
    return DeployForms(net, cfg, state, checkpoint, sma, folded, exact, static, errors, shifts, calibrated)


def export_run(
    run_dir: str | Path,
    out: str | Path,
    sma: str = "per-timestep",
    calib_samples: int = 256,
    verify_samples: int | None = None,
) -> tuple[dict[str, Any], torch.nn.Module, NetFile]:
    """Fold, write and verify one run's selected checkpoint; returns the ``export.json`` content, folded model, file."""
    t0 = time.perf_counter()
    out = Path(out)
    forms = deploy_forms(run_dir, sma, calib_samples)
    cfg, state = forms.cfg, forms.state
    report: dict[str, Any] = {
        "run": str(run_dir),
        "file": str(out),
        "model": cfg.model,
        "sma_mode": forms.sma,
        "checkpoint": forms.checkpoint,
        "selected_epoch": state.get("epoch"),
        "selection": state.get("selection", "last"),
        "norm": cfg.norm,  # deployed as neuron biases (and, weight-scale, thresholds): docs/design.md
    }
    if forms.calibration_samples:
        report["calibration_samples"], report["calibration_seed"] = forms.calibration_samples, cfg.seed
    report["fold_rel_error"] = forms.errors
    report["weight_range_shift"] = forms.shifts
    try:
        netfile = write_checked(forms.folded, out, forms.metadata())
    except RuntimeConfigError as e:
        raise ExportError(f"{out}: the written file does not validate: {e}") from None
    _, test_set = load_datasets(cfg)
    spikes, labels = test_set.spikes[:verify_samples], test_set.labels[:verify_samples]
    report["verify_samples"] = len(labels)
    fixed = fixed_point_accuracy(netfile, spikes, labels)
    static_fixed = fixed
    if forms.static is not None:
        static_fixed = fixed_point_accuracy(written(forms.static, forms.metadata("static")), spikes, labels)
    report["accuracy"] = accuracy_table(
        torch_accuracy(forms.net, spikes, labels),
        torch_accuracy(forms.exact, spikes, labels),
        fixed,
        static_fixed,
    )
    report["per_inference"] = inference_cost(netfile, spikes[:COST_SAMPLES])
    report["layers"] = [dataclasses.asdict(row) for row in footprint(netfile)]
    report["cores_estimate"] = sum(row["cores"] for row in report["layers"])
    report["limits_sources"] = SOURCES
    report["seconds"] = time.perf_counter() - t0
    atomic_write_json(out.with_name(RunDir.EXPORT_JSON), report)
    return report, forms.folded, netfile


def inference_cost(netfile: NetFile, spikes: Any) -> dict[str, Any]:
    """Neurons, and spikes, synops and energy (Loihi per-op model) per inference of ``netfile`` on ``spikes`` (emu)."""
    # The emulator directly, not lava_runtime.runner: export must not load the Lava backends.
    run = build_report(emulate(netfile, spikes), None, {"backend": "emu"}, 0.0, energy=load_energy_model(None))
    n, totals = run["samples"], run["totals"]
    return {
        "samples": n,
        "neurons": int(sum(np.prod(layer.shape) for layer in netfile.layers)),
        "spikes": totals["spikes"] / n,
        "synops": totals["synops"] / n,
        "energy_uj": totals["energy_per_inference_j"] * 1e6,
    }


def static_fold_file(run_dir: str | Path, out: str | Path, calib_samples: int = 256) -> NetFile:
    """The run's SMA layers folded with their time-averaged gain in the weights (``--fold static``), written to ``out``.

    For clients that cannot apply a per-timestep gain (NIR readers); the calibration is the export's.
    """
    forms = deploy_forms(run_dir, "per-timestep", calib_samples)
    if forms.static is None:
        raise ExportError(f"{run_dir}: has no per-timestep gains to fold into the weights")
    try:
        return write_checked(forms.static, Path(out), forms.metadata("static"))
    except RuntimeConfigError as e:
        raise ExportError(f"{out}: the written file does not validate: {e}") from None


def write_nir_for(
    run_dir: str | Path, netfile: NetFile, out: Path, nir_sma: str, dt: float, calib_samples: int = 256
) -> Path:
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
    head = (
        f"{'layer':10s} {'in':>14s} {'out':>14s} {'neurons':>8s} {'synapses':>10s} {'fan-in':>7s} {'wbits':>5s} "
        f"{'wexp':>4s} {'range':>5s} {'cores':>5s}"
    )
    lines = [head, "-" * len(head)]
    for r in report["layers"]:
        lines.append(
            f"{r['name']:10s} {str(r['input_shape']):>14s} {str(r['output_shape']):>14s} {r['neurons']:8d} "
            f"{r['synapses']:10d} {r['fan_in']:7d} {r['weight_bits']:5d} {r['weight_exp']:4d} "
            f"{r['weight_range_used']:5.2f} {r['cores']:5d}"
        )
    a = report["accuracy"]
    lines.append(f"estimated Loihi 2 cores: {report['cores_estimate']}")
    lines.append(
        f"accuracy on {report['verify_samples']} test samples: dynamic {a['dynamic']:.4f} → folded "
        f"{a['folded_float']:.4f} → fixed point {a['fixed_point']:.4f} (total drop {a['drop_total_pp']:.2f} pp); "
        f"static fold in fixed point {a['static_fixed_point']:.4f}"
    )
    if report["fold_rel_error"]:
        lines.append(
            "attention fold relative error per layer (SMA: its factorisation; MA: exact): "
            + ", ".join(f"{e:.4f}" for e in report["fold_rel_error"])
        )
    return "\n".join(lines)
