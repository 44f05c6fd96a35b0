"""The report's NeuroBench-style metrics computed again by the real ``neurobench`` library.

``python -m export.neurobench --run RUN [--samples N] [--out FILE]`` folds the run as its export did (``export.json``'s
SMA mode and calibration samples), gives the folded torch model the chip's quantised weights
(SLAYER's ``quantize_8bit`` applied once, so a weight the chip holds as 0 is 0) and wraps it in
NeuroBench's ``TorchModel``; it runs NeuroBench's footprint, connection sparsity, activation
sparsity, synaptic operations and accuracy on test samples, and the ``emu`` backend's report on
the same samples through the network file written from the same fold.

Where the definitions coincide the figures must be equal:

- effective ACs per sample: NeuroBench counts, at every synapse layer, each nonzero input times
  each nonzero weight it meets, which is the report's synops (spike × fan-out of nonzero
  weights); no MACs, the inputs being binary.
- connection sparsity: zero weights over all weights of the Conv/Linear layers (NeuroBench rounds
  to 4 decimals).
- accuracy: the report's decision rule (``chipnet.decision``; NeuroBench's float32 mean).
- activation sparsity: zero outputs over ``neurons × T × samples``, read at the blocks' outputs,
  the spikes each layer sends on: the report's window.

Where they differ, both are given: the footprint is NeuroBench's bytes of the torch model's
float32 parameters and buffers, the report's 1 byte per weight and 2 per gain mantissa of the chip.

NeuroBench runs under ``torch.no_grad()``: with autograd on, its hooks fail on SLAYER blocks and,
with ``quiet=True``, every metric silently reads 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chipnet import decision
from chipnet.atomic import atomic_write_json
from chipnet.cli import run_cli
from chipnet.errors import RuntimeConfigError
from export.pipeline import deploy_forms, write_checked
from lava_runtime.emu import emulate
from lava_runtime.report import build_report
from train.loop import config_dataset
from train.rundir import RunDir


def quantized_copy(folded: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``folded`` whose synapse weights are the chip's (their ``pre_hook_fx`` applied once)."""
    net = copy.deepcopy(folded).eval()
    with torch.no_grad():
        for module in net.modules():
            hook = getattr(module, "pre_hook_fx", None)
            if hook is not None and isinstance(getattr(module, "weight", None), torch.nn.Parameter):
                module.weight.copy_(hook(module.weight))  # idempotent: the forward pass is unchanged
    return net


def _fold(run_dir: Path, tmp: Path) -> tuple[torch.nn.Module, Any, Any]:
    """The run folded as exported, and its NetX file written to ``tmp``: ``(folded, cfg, netfile)``."""
    export_json = RunDir(run_dir).export_json
    info = json.loads(export_json.read_text()) if export_json.exists() else {}
    forms = deploy_forms(run_dir, info.get("sma_mode", "per-timestep"), int(info.get("calibration_samples", 256)))
    return forms.folded, forms.cfg, write_checked(forms.folded, tmp, forms.metadata())


def library_metrics(model: torch.nn.Module, spikes: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """NeuroBench's static and workload metrics of a SLAYER-block model on ``spikes`` ``[N, C, H, W, T]``."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
    from neurobench.models import TorchModel
    from torch.utils.data import DataLoader, TensorDataset

    wrapped = TorchModel(model)
    for block in getattr(model, "blocks", []):
        if hasattr(block, "neuron"):  # a spiking layer: its output is what the next layer receives
            wrapped.add_activation_module(type(block))
    data = TensorDataset(torch.from_numpy(spikes.astype(np.float32)), torch.from_numpy(np.asarray(labels)))
    loader = DataLoader(data, batch_size=len(data))  # one batch: NeuroBench's per-batch means stay exact

    readout = getattr(model, "readout", "spikes")

    def predict(output: torch.Tensor) -> torch.Tensor:  # the project's decision rule, ties included
        return torch.from_numpy(decision.predict(output, readout))

    bench = Benchmark(
        wrapped,
        loader,
        [],
        [predict],
        [
            [Footprint, ConnectionSparsity, ParameterCount],
            [ActivationSparsity, SynapticOperations, ClassificationAccuracy],
        ],
    )
    with torch.no_grad():
        results = bench.run(quiet=True)
    bench.workload_metric_manager.cleanup_hooks(wrapped)
    return results


def compare(run_dir: str | Path, samples: int | None = None) -> dict[str, Any]:
    """NeuroBench's figures, the emu report's, and for each metric whether they agree or how they differ."""
    run_dir = Path(run_dir)
    RunDir(run_dir).checkpoint()  # a folder that is no run fails here, before any work
    tmp = run_dir / f".neurobench.{os.getpid()}.net"
    try:
        folded, cfg, netfile = _fold(run_dir, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    test = config_dataset(cfg, "test", limit=samples)
    t0 = time.perf_counter()
    report = build_report(emulate(netfile, test.spikes), test.labels, {"backend": "emu"}, time.perf_counter() - t0)
    nb = library_metrics(quantized_copy(folded), test.spikes, test.labels)
    mine = {**report["neurobench"], "accuracy": report["accuracy"]}
    theirs = {
        "effective_acs_per_sample": nb["SynapticOperations"]["Effective_ACs"],
        "effective_macs_per_sample": nb["SynapticOperations"]["Effective_MACs"],
        "connection_sparsity": nb["ConnectionSparsity"],
        "accuracy": nb["ClassificationAccuracy"],
        "activation_sparsity": nb["ActivationSparsity"],
        "footprint_bytes": nb["Footprint"],
    }
    n = len(test.labels)
    agree = {
        # NeuroBench averages in float32: equal up to its rounding (exact on small sample counts).
        "effective_acs_per_sample": math.isclose(
            theirs["effective_acs_per_sample"], mine["effective_acs_per_sample"], rel_tol=1e-6
        ),
        "effective_macs_per_sample": theirs["effective_macs_per_sample"] == mine["effective_macs_per_sample"],
        "connection_sparsity": theirs["connection_sparsity"] == round(mine["connection_sparsity"], 4),
        # NeuroBench's accuracy is a float32 mean: compare the number of correct samples.
        "accuracy": round(theirs["accuracy"] * n) == round(mine["accuracy"] * n),
        "activation_sparsity": abs(theirs["activation_sparsity"] - mine["activation_sparsity"]) < 1e-12,
    }
    return {
        "run": str(run_dir),
        "samples": n,
        "timesteps": int(cfg.timesteps),
        "sma_mode": netfile.metadata.get("sma"),
        "neurobench": theirs,
        "report": mine,
        "agree": agree,
        "definitions": {
            "effective_acs_per_sample": "nonzero input × nonzero weight per synapse layer = the report's synops",
            "connection_sparsity": "zero weights / weights of the Conv/Linear layers (NeuroBench rounds to 4 decimals)",
            "accuracy": "chipnet.decision (most spikes, then earliest first spike, else undecided); equal as a count "
            "of correct samples (NeuroBench: float32 mean)",
            "activation_sparsity": "zero block outputs / (neurons × T × samples): the spikes each layer sends, "
            "the report's window",
            "footprint_bytes": f"NeuroBench: float32 parameters and buffers of the torch model; report: "
            f"{report['neurobench']['footprint_basis']} as the chip holds them",
        },
        "neurobench_raw": nb,
    }


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as a text table: metric, NeuroBench, report, agreement or how they differ."""
    lines = [
        f"NeuroBench vs the emu report: {result['run']}, {result['samples']} test samples of "
        f"{result['timesteps']} steps (SMA: {result['sma_mode'] or 'none'})",
        f"{'metric':26s} {'NeuroBench':>14s} {'report':>14s}  agreement: definition",
    ]
    for key, value in result["neurobench"].items():
        mine = result["report"].get(key)
        verdict = ("equal" if result["agree"][key] else "DIFFER") if key in result["agree"] else "differs by definition"
        lines.append(f"{key:26s} {value:>14.6g} {mine:>14.6g}  {verdict}: {result['definitions'].get(key, '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print NeuroBench's figures beside the emu report's and write them as JSON; 1 if any disagrees."""
    p = argparse.ArgumentParser(
        prog="python -m export.neurobench",
        description="the report's NeuroBench metrics from the real neurobench library",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--run", required=True, help="training run folder (checkpoint.pt, export.json)")
    p.add_argument("--samples", type=int, default=None, help="test samples (default: the whole split)")
    p.add_argument("--out", default=None, help="comparison JSON (default: RUN/neurobench.json)")
    args = p.parse_args(argv)
    if args.samples is not None and args.samples < 1:
        raise RuntimeConfigError("--samples must be at least 1")
    out = Path(args.out) if args.out else Path(args.run) / "neurobench.json"
    if not out.parent.is_dir():
        raise RuntimeConfigError(f"output folder {out.parent} does not exist")
    result = compare(args.run, args.samples)
    atomic_write_json(out, {k: v for k, v in result.items() if k != "neurobench_raw"})
    print(format_comparison(result))
    print(f"written to {out}")
    return 0 if all(result["agree"].values()) else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
