"""Reports of a run: ``report.json`` for machines, ``report.md`` with PNG plots for people.

Counting conventions (lava_runtime/counting.py, timing in lava_runtime/records.py): ``spikes``
and ``synops`` of a layer count the ``T`` steps in which the layer processes each sample (its
local time, as the torch model computes it), so every spike the chip makes for a sample is
counted for that sample. Energy is
``synops × synop_j + neuron_updates × neuron_update_j + spikes × spike_j``, with every neuron
advanced at each of the sample's ``T`` steps. The 45 nm ANN comparison and the NeuroBench-style
ACs use the same synops, as papers do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chipnet.atomic import atomic_write, atomic_write_json
from chipnet.decision import decide, decide_graded, decide_voltage
from lava_runtime.energy import EnergyModel, ann_comparison, layer_energy
from lava_runtime.records import LayerRecord

WEIGHT_BYTES = 1  # 8-bit weight mantissas
GAIN_BYTES = 2  # 12-bit gain mantissas in 16-bit words


def layer_rows(
    layers: list[LayerRecord], samples: int, timesteps: int, energy: EnergyModel | None = None
) -> list[dict[str, Any]]:
    """Per-layer counts: neurons, synapses, spikes, synops, neuron updates and (with a model) energy."""
    rows = []
    for layer in layers:
        neurons = int(np.prod(layer.shape))
        topo = layer.topology
        row: dict[str, Any] = {
            "name": layer.name,
            "type": (topo.kind if topo else layer.name.split(":")[-1]) + ("+gain" if layer.gain else ""),
            "shape": [int(v) for v in layer.shape],
            "neurons": neurons,
            "synapses": topo.synapses if topo else None,
            "spikes": int(layer.counts.sum()),
            "synops": int(layer.synops.sum()) if layer.synops is not None else None,
            # Every neuron is advanced at every step; one sample occupies a layer for T steps.
            "neuron_updates": neurons * samples * timesteps,
            "spikes_per_step": layer.counts.sum(0).tolist(),
            "synops_per_step": layer.synops.sum(0).tolist() if layer.synops is not None else None,
        }
        if energy is not None and row["synops"] is not None:
            parts = layer_energy(energy, row["synops"], row["neuron_updates"], row["spikes"])
            row["energy_by_op_j"] = parts
            row["energy_j"] = sum(parts.values())
        else:
            row["energy_by_op_j"], row["energy_j"] = None, None
        rows.append(row)
    return rows


def neurobench_metrics(
    layers: list[LayerRecord], rows: list[dict[str, Any]], samples: int, timesteps: int
) -> dict[str, Any]:
    """NeuroBench-style static and workload metrics of the run."""
    topos = [layer.topology for layer in layers]
    known = all(t is not None for t in topos) and all(r["synops"] is not None for r in rows)
    spikes = sum(r["spikes"] for r in rows)
    slots = sum(r["neurons"] for r in rows) * samples * timesteps
    # A binary spike adds a weight (an accumulate); a graded message multiplies it by the payload (a MAC).
    # Layer k's synops come from layer k - 1's messages (layer 0's from the input, binary or none).
    from_graded = [k > 0 and layers[k - 1].graded for k in range(len(layers))]
    acs = sum(r["synops"] for r, g in zip(rows, from_graded) if not g) if known else None
    macs = sum(r["synops"] for r, g in zip(rows, from_graded) if g) if known else None
    out: dict[str, Any] = {
        "effective_acs_per_sample": acs / samples if known and samples else None,
        "effective_macs_per_sample": (macs / samples if known and samples else None) if any(from_graded) else 0,
        "activation_sparsity": 1.0 - spikes / slots if slots else None,
        "connection_sparsity": None,
        "footprint_bytes": None,
        "footprint_basis": f"{WEIGHT_BYTES} byte per weight, {GAIN_BYTES} per gain mantissa",
    }
    if known:
        params = sum(t.params for t in topos)
        out["connection_sparsity"] = 1.0 - sum(t.nonzero_params for t in topos) / params if params else None
        gains = sum(timesteps * int(layer.shape[-1]) for layer in layers if layer.gain)
        out["footprint_bytes"] = int(params * WEIGHT_BYTES + gains * GAIN_BYTES)
    return out


def output_raster(layer: LayerRecord, sample: int = 0) -> dict[str, Any] | None:
    """Output spikes of one sample as ``[step, neuron]`` pairs (for the raster plot)."""
    if layer.spikes is None or layer.spikes.shape[0] <= sample:
        return None
    s = layer.spikes[sample].reshape(-1, layer.spikes.shape[-1])
    neuron, step = np.nonzero(s)
    return {"sample": sample, "neurons": int(s.shape[0]), "events": [[int(t), int(i)] for t, i in zip(step, neuron)]}


def _accuracy(report: dict[str, Any]) -> str:
    """The report's accuracy as text ('n/a' where the run had no labels)."""
    return "n/a" if report.get("accuracy") is None else f"{report['accuracy']:.3f}"


def build_report(
    layers: list[LayerRecord],
    labels: np.ndarray | None,
    run_info: dict[str, Any],
    wall_s: float,
    energy: EnergyModel | None = None,
    agreement: float | None = None,
) -> dict[str, Any]:
    """The report dict (schema in docs/design.md): run, accuracy by output spike count, per-layer counts, energy.

    Without ``labels`` (arrays run with ``--input`` and no ``--labels``) accuracy and labels are None.
    """
    out = layers[-1].spikes
    graded = layers[-1].graded
    voltage = layers[-1].voltage
    if voltage is not None:
        decision = decide_voltage(voltage)
    else:
        decision = decide_graded(out) if graded else decide(out)
    predictions = decision.predictions
    samples, timesteps = out.shape[0], out.shape[-1]
    rows = layer_rows(layers, samples, timesteps, energy)
    totals: dict[str, Any] = {
        "spikes": sum(r["spikes"] for r in rows),
        "synops": sum(r["synops"] for r in rows) if all(r["synops"] is not None for r in rows) else None,
        "neuron_updates": sum(r["neuron_updates"] for r in rows),
        "energy_j": None,
        "energy_per_inference_j": None,
    }
    report: dict[str, Any] = {
        **run_info,
        "samples": int(samples),
        "timesteps": int(timesteps),
        "accuracy": None if labels is None else float((predictions == labels).mean()) if samples else 0.0,
        "agreement": agreement,
        # Sigma-delta networks: the largest output sum over the sample's steps (chipnet.decision.decide_graded).
        "decision": "output voltage at the end of the window"
        if voltage is not None
        else "graded output sum"
        if graded
        else "output spike count",
        # NetX resets CUBA layers between samples; sigma-delta states carry over from sample to sample.
        "resets": not any(layer.graded for layer in layers),
        "tied": decision.tied,
        "undecided": decision.undecided,
        "predictions": predictions.tolist(),
        "labels": None if labels is None else [int(v) for v in labels],
        "wall_s": wall_s,
        "steps_per_s": samples * timesteps / wall_s if wall_s > 0 else None,
        "layers": rows,
        "totals": totals,
        "ann_comparison": None,
        "energy_model": energy.as_dict() if energy is not None else None,
        "neurobench": neurobench_metrics(layers, rows, samples, timesteps),
        "output_raster": output_raster(layers[-1]),
    }
    if energy is not None and all(r["energy_j"] is not None for r in rows):
        totals["energy_j"] = sum(r["energy_j"] for r in rows)
        totals["energy_per_inference_j"] = totals["energy_j"] / samples if samples else None
        macs = sum(layer.topology.synapses for layer in layers)
        # Paper-style: the synops of the sample windows (what the torch model computes), as NeuroBench counts them.
        nb = report["neurobench"]
        report["ann_comparison"] = ann_comparison(
            energy, macs, nb["effective_acs_per_sample"] or 0.0, nb["effective_macs_per_sample"] or 0.0
        )
    hardware = getattr(layers[-1], "hardware", None)
    if hardware:  # measured on the chip: it replaces the counting estimate
        report["hardware"] = hardware
        totals["energy_j"] = hardware["energy_j"]
        totals["energy_per_inference_j"] = hardware["energy_j"] / samples if samples else None
    return report


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write ``report.json`` and beside it ``<stem>.md`` with ``<stem>_{spikes,raster,energy}.png``."""
    path = Path(path)
    atomic_write_json(path, report)
    plots = [plot_spikes_per_layer(report, path.with_name(f"{path.stem}_spikes.png"))]
    if report.get("output_raster"):
        plots.append(plot_output_raster(report, path.with_name(f"{path.stem}_raster.png")))
    if report.get("totals", {}).get("energy_j") is not None:
        plots.append(plot_energy(report, path.with_name(f"{path.stem}_energy.png")))
    text = render_markdown(report, [p.name for p in plots])
    atomic_write(path.with_suffix(".md"), lambda fh: fh.write(text.encode()))
    return path


def _fmt(value: Any, unit: str = "") -> str:
    """A number for a table: engineering notation for energies, thousands separators for counts."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.3g}{unit}"
    return f"{value:,}{unit}"


def render_markdown(report: dict[str, Any], images: list[str]) -> str:
    """``report.md``: the run, per-layer table, totals, energy and NeuroBench metrics, plots."""
    lines = [
        f"# {Path(str(report.get('net', 'network'))).name} on {report.get('backend', '?')}",
        "",
        f"{report['samples']} samples of {report.get('dataset', '?')}/{report.get('split', '?')}, "
        f"{report['timesteps']} timesteps each: accuracy **{_accuracy(report)}**"
        + (
            f", agreement with the fixed-point model {report['agreement']:.3f}"
            if report.get("agreement") is not None
            else ""
        )
        + f"; {_fmt(report.get('steps_per_s'))} timesteps/s. "
        + (
            ""
            if report.get("resets", True)
            else "Sigma-delta network: no resets between samples (each starts from the state the previous one "
            "left), decision by the largest output sum. "
        )
        + f"Decision: {report.get('decision', 'output spike count')}. Ties in the output: "
        f"{report.get('tied', 0)} samples, {report.get('undecided', 0)} left undecided "
        "(counted as errors).",
        "",
        "| layer | type | neurons | synapses | spikes | synops | neuron updates | energy (J) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["layers"]:
        lines.append(
            f"| {r['name']} | {r.get('type', '')} | {_fmt(r['neurons'])} | {_fmt(r.get('synapses'))} | "
            f"{_fmt(r['spikes'])} | {_fmt(r.get('synops'))} | "
            f"{_fmt(r.get('neuron_updates'))} | {_fmt(r.get('energy_j'))} |"
        )
    t = report["totals"]
    lines += [
        "",
        f"Totals: {_fmt(t['spikes'])} spikes, {_fmt(t.get('synops'))} synops, "
        f"{_fmt(t.get('energy_j'), ' J')} ({_fmt(t.get('energy_per_inference_j'), ' J')} per inference).",
    ]
    ann = report.get("ann_comparison")
    if ann:
        lines += [
            "",
            "## ANN comparison (45 nm)",
            "",
            f"The same network as an ANN: {_fmt(ann['macs'])} MACs per inference, {_fmt(ann['energy_j'], ' J')}; "
            f"the SNN: {_fmt(ann['snn_acs'])} accumulates, {_fmt(ann['snn_energy_j'], ' J')}; "
            f"ratio {_fmt(ann['ratio'])}× ({ann['basis']}).",
        ]
    nb = report.get("neurobench")
    if nb:
        lines += ["", "## NeuroBench-style metrics", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in nb.items()]
    model = report.get("energy_model")
    if model:
        lines += ["", f"## Energy model `{model['name']}`", "", "| constant | value (J) | source |", "|---|---:|---|"]
        lines += [f"| {k} | {c['value']:.3g} | {c['source']} |" for k, c in model["constants"].items()]
    lines += [""] + [f"![{name}]({name})" for name in images] + [""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    _pyplot().close(fig)
    return path


def plot_spikes_per_layer(report: dict[str, Any], path: Path) -> Path:
    """Bar chart of mean spikes per sample and per neuron for every layer."""
    plt = _pyplot()
    names = [r["name"] for r in report["layers"]]
    n = max(report["samples"], 1)
    per_sample = [r["spikes"] / n for r in report["layers"]]
    rate = [r["spikes"] / n / r["neurons"] / report["timesteps"] for r in report["layers"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].bar(names, per_sample, color="tab:blue")
    axes[0].set_ylabel("spikes per sample")
    axes[1].bar(names, rate, color="tab:orange")
    axes[1].set_ylabel("spikes per neuron per step")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{report.get('net', '')} on {report.get('backend', '')}: accuracy {_accuracy(report)}")
    fig.tight_layout()
    return _save(fig, path)


def plot_output_raster(report: dict[str, Any], path: Path) -> Path:
    """Output-layer spikes of one sample: neuron against timestep."""
    plt = _pyplot()
    raster = report["output_raster"]
    ev = np.asarray(raster["events"], dtype=int).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.scatter(ev[:, 0], ev[:, 1], marker="|", s=120, color="black")
    ax.set_xlim(-0.5, report["timesteps"] - 0.5)
    ax.set_ylim(-0.5, raster["neurons"] - 0.5)
    ax.set_xlabel("timestep")
    ax.set_ylabel("output neuron")
    i = raster["sample"]
    labels = report.get("labels") or []
    label = labels[i] if i < len(labels) else "?"
    pred = report["predictions"][i] if i < len(report.get("predictions", [])) else "?"
    ax.set_title(f"sample {i}: label {label}, predicted {pred}")
    fig.tight_layout()
    return _save(fig, path)


def plot_energy(report: dict[str, Any], path: Path) -> Path:
    """Stacked bars of energy per inference by layer and kind of operation."""
    plt = _pyplot()
    names = [r["name"] for r in report["layers"]]
    n = max(report["samples"], 1)
    kinds = list(report["layers"][0]["energy_by_op_j"])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    bottom = np.zeros(len(names))
    for kind in kinds:
        vals = np.array([r["energy_by_op_j"][kind] / n for r in report["layers"]])
        ax.bar(names, vals, bottom=bottom, label=kind)
        bottom += vals
    ax.set_ylabel("energy per inference (J)")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)
    ax.set_title(f"energy model {report['energy_model']['name']}")
    fig.tight_layout()
    return _save(fig, path)


def plot_accuracy_energy(rows: list[dict[str, Any]], path: Path, accuracy: str = "fixed_point") -> Path:
    """Accuracy against energy per inference, one point per row (a model and seed), one panel per dataset.

    Each row has ``dataset``, ``model``, ``energy_uj`` and the ``accuracy`` key (a fraction), as the
    rows of ``bench/accuracy.py``; rows with ``kernels`` set (its scales ablation) are left out.
    """
    plt = _pyplot()
    rows = [r for r in rows if not r.get("kernels")]
    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(5 * max(1, len(datasets)), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        models = list(dict.fromkeys(r["model"] for r in rows if r["dataset"] == dataset))  # first-seen order
        for model in models:
            pts = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            ax.scatter([r["energy_uj"] for r in pts], [100 * r[accuracy] for r in pts], label=model)
        ax.set(
            title=dataset,
            xlabel="energy per inference (µJ, Loihi per-op model)",
            ylabel=f"test accuracy, {accuracy.replace('_', ' ')} (%)",
        )
        ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def compare_reports(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """Two reports side by side as a text table (run-level metrics, then per-layer spikes and synops)."""

    def get(r: dict[str, Any], *keys: str) -> Any:
        for k in keys:
            r = r.get(k) if isinstance(r, dict) else None
        return r

    rows = [
        ("net", ("net",)),
        ("backend", ("backend",)),
        ("dataset", ("dataset",)),
        ("samples", ("samples",)),
        ("timesteps", ("timesteps",)),
        ("accuracy", ("accuracy",)),
        ("agreement", ("agreement",)),
        ("steps/s", ("steps_per_s",)),
        ("spikes", ("totals", "spikes")),
        ("synops", ("totals", "synops")),
        ("neuron updates", ("totals", "neuron_updates")),
        ("energy J", ("totals", "energy_j")),
        ("energy/inference J", ("totals", "energy_per_inference_j")),
        ("ANN MACs", ("ann_comparison", "macs")),
        ("ANN/SNN energy", ("ann_comparison", "ratio")),
        ("activation sparsity", ("neurobench", "activation_sparsity")),
        ("connection sparsity", ("neurobench", "connection_sparsity")),
        ("ACs/sample", ("neurobench", "effective_acs_per_sample")),
        ("footprint bytes", ("neurobench", "footprint_bytes")),
    ]
    table = [(label, _fmt(get(a, *keys)), _fmt(get(b, *keys))) for label, keys in rows]
    la, lb = a.get("layers", []), b.get("layers", [])
    for i in range(max(len(la), len(lb))):
        ra = la[i] if i < len(la) else {}
        rb = lb[i] if i < len(lb) else {}
        label = f"layer {i} ({ra.get('name', '–')} | {rb.get('name', '–')})"
        table.append((f"{label} spikes", _fmt(ra.get("spikes")), _fmt(rb.get("spikes"))))
        table.append((f"{label} synops", _fmt(ra.get("synops")), _fmt(rb.get("synops"))))
    w0 = max(len(r[0]) for r in table)
    w1 = max(len(names[0]), *(len(str(r[1])) for r in table))
    lines = [f"{'':{w0}}  {names[0]:>{w1}}  {names[1]}"]
    lines += [f"{label:{w0}}  {str(va):>{w1}}  {vb}" for label, va, vb in table]
    return "\n".join(lines)
