"""Is SMA worth deploying? Accuracy, spikes and energy of the baselines and SMA over seeds.

Trains ``vgg`` (3×3), ``vgg7`` (7×7 convs where SMA sits: the like-for-like baseline, since a
folded SMA layer deploys as one 7×7 conv plus a gain), ``sma-vgg``, ``sma-azo-vgg`` (linear SMA),
``sma-vgg-spiking`` and ``sma-azo-vgg-spiking`` (the authors' block, ``sma_block: spiking``) and ``ma-vgg``
(MA-SNN's temporal-channel attention, folded into a 3×3 conv plus a gain) for each seed on each
dataset (``--models`` picks some; ``sma-vgg-static`` and ``sma-vgg-spiking-static``, run when named,
are the same layers without attention, ``sma.attention: static``: the capacity-matched controls),
exports every run and measures it on the emulator (the chip's fixed point). Prints one table of
mean ± std over seeds: validation accuracy (model selection), test accuracy of the selected
checkpoint, the export's ``fixed_point`` and ``static_fixed_point`` test accuracy, and spikes, synops and energy per inference. Then the paper's Table 1 ablation:
sma-vgg with 1..4 scales (kernels 1, 1-3, 1-3-5, 1-3-5-7) on the first dataset; the set that is
the config's own (1-3-5-7) is the sma-vgg model run itself, not trained twice. Writes
``rows.json``, ``table.md`` and ``accuracy_vs_energy.png`` (one point per model and seed).

    python bench/accuracy.py                # synthgesture + ndigits, 3 seeds, each dataset's config
    python bench/accuracy.py --quick        # smoke run: tiny sets, 1 epoch, 2 seeds (a minute or two)
    python bench/accuracy.py --datasets synthgesture --no-ablation --models vgg ma-vgg
    python bench/accuracy.py --datasets synthgesture --models --scales 1-3 1-3-5   # ablation sets only
    python bench/accuracy.py --configs dvsgesture-small --no-ablation   # the 128×128 DVS Gesture net

Runs whose row is already in ``--out``'s ``rows.json`` are not repeated, so an interrupted bench
resumes and benches of different models into one ``--out`` combine into one table. ``--first-seed``
splits one bench over machines (``--first-seed 2 --seeds 1`` runs seed 2 only); merge their rows.json.

A difference inside the seed-to-seed spread is no difference: the table gives both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from chipnet.atomic import atomic_write, atomic_write_json
from chipnet.progress import progress_bar
from export.pipeline import export_run
from lava_runtime.report import plot_accuracy_energy
from lava_runtime.runner import run_dataset
from train.config import CONFIG_DIR, load_config, with_options
from train.loop import train
from train.rundir import RunDir

# Bench rows: a model, or a model with options (the authors' spiking SMA block beside the linear one).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sma-vgg-spiking": ("sma-vgg", {"sma.block": "spiking"}),
    "sma-azo-vgg-spiking": ("sma-azo-vgg", {"sma.block": "spiking"}),
}
# Controls, run when named: the same layers with learned input-independent branch weights, no attention.
CONTROLS: dict[str, tuple[str, dict[str, Any]]] = {
    "sma-vgg-static": ("sma-vgg", {"sma.attention": "static"}),
    "sma-vgg-spiking-static": ("sma-vgg", {"sma.block": "spiking", "sma.attention": "static"}),
}
DEFAULT_MODELS = ("vgg", "vgg7", "sma-vgg", "sma-azo-vgg", "ma-vgg", *VARIANTS)
MODELS = (*DEFAULT_MODELS, *CONTROLS)
SCALES = ([1], [1, 3], [1, 3, 5], [1, 3, 5, 7])
QUICK_SCALES = ([1], [1, 3, 5, 7])
QUICK = {
    "dataset_options": {"samples_per_class": 3, "seed": 7},
    "input_size": 16,
    "timesteps": 8,
    "channels": [4, 6],
    "hidden": 16,
    "epochs": 1,
    "batch_size": 8,
}
COLUMNS = (
    "val",
    "test",
    "test_best_epoch",
    "folded_float",
    "fixed_point",
    "static_fixed_point",
    "neurons",
    "spikes",
    "synops",
    "energy_uj",
)


def run_one(
    dataset: str, model: str, seed: int, out: Path, args: argparse.Namespace, kernels: list[int] | None = None
) -> dict[str, Any]:
    """Train, export and emulate one configuration; its row of figures."""
    cfg = load_config(CONFIG_DIR / f"{dataset}.yaml")  # ``dataset`` names a config; the data is its dataset
    name, options = {**VARIANTS, **CONTROLS}.get(model, (model, {}))
    options = {**options, "model": name, "seed": seed, "cache_dir": str(args.cache_dir), "data_root": args.data_root}
    if args.quick:
        options.update(QUICK)
    if args.epochs is not None:
        options["epochs"] = args.epochs
    if kernels is not None:
        options["sma.kernel_sizes"] = list(kernels)
    cfg = with_options(cfg, options, source=f"bench row {model}")
    run = out / f"{dataset}-{model}{'-k' + ''.join(map(str, kernels)) if kernels else ''}-s{seed}"
    files = RunDir(run)
    if args.reexport and files.metrics_json.exists():  # trained before: export and measure again only
        metrics = json.loads(files.metrics_json.read_text())
    else:
        metrics = train(cfg, run)
    export, _, _ = export_run(run, files.model_net)
    report = run_dataset(
        files.model_net,
        cfg.dataset,
        "test",
        samples=None,
        backend="emu",
        cache_dir=cfg.cache_dir,
        data_root=cfg.data_root,
    )
    n = report["samples"]
    return {
        "dataset": dataset,
        "model": model,
        "kernels": kernels,
        "seed": seed,
        "run": str(run),
        "val": metrics.get("best_val_accuracy"),
        "test": metrics["test_accuracy_selected"],
        # The paper's protocol (best test epoch): optimistic, reported beside the validation-selected test.
        "test_best_epoch": metrics["test_accuracy_best_epoch"]["accuracy"],
        "folded_float": export["accuracy"]["folded_float"],
        "fixed_point": export["accuracy"]["fixed_point"],
        "static_fixed_point": export["accuracy"]["static_fixed_point"],
        "neurons": sum(layer["neurons"] for layer in export["layers"]),
        "spikes": report["totals"]["spikes"] / n,
        "synops": report["totals"]["synops"] / n,
        "energy_uj": report["totals"]["energy_per_inference_j"] * 1e6,
        "undecided": report["undecided"] / n,
    }


def row_key(row: dict[str, Any]) -> tuple[str, str, int, tuple[int, ...] | None]:
    """What identifies a bench run: dataset, model, seed and (ablation) kernel sizes."""
    kernels = row["kernels"]
    return row["dataset"], row["model"], int(row["seed"]), tuple(kernels) if kernels is not None else None


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The rows an earlier bench wrote to ``path`` (none if it does not exist)."""
    if not path.exists():
        return []
    rows = json.loads(path.read_text())
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of bench rows")
    return rows


def parse_kernels(text: str) -> list[int]:
    """An ablation kernel set as the table names it: ``1-3-5`` → ``[1, 3, 5]`` (odd sizes)."""
    try:
        kernels = [int(k) for k in text.split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected odd kernel sizes joined by '-', e.g. 1-3-5") from None
    if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
        raise argparse.ArgumentTypeError(f"{text!r}: kernel sizes must be odd and positive, e.g. 1-3-5")
    return kernels


def ablation_rows(rows: list[dict[str, Any]], dataset: str, own: list[int]) -> list[dict[str, Any]]:
    """The scales-ablation rows of ``dataset``, with the sma-vgg model runs standing for its own kernel set."""
    runs = [r for r in rows if r["dataset"] == dataset and r["model"] == "sma-vgg"]
    return sorted(
        (r if r["kernels"] else {**r, "kernels": own} for r in runs),
        key=lambda r: (len(r["kernels"]), r["kernels"], r["seed"]),
    )


def _cell(values: list[float | None], scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± std`` of ``values`` (std over seeds, n - 1; a single value without spread)."""
    vals = [v * scale for v in values if v is not None]
    if not vals:
        return "n/a"
    mean = statistics.fmean(vals)
    spread = f" ± {statistics.stdev(vals):.{digits}f}" if len(vals) > 1 else ""
    return f"{mean:.{digits}f}{spread}"


def table(rows: list[dict[str, Any]], key: str) -> str:
    """Markdown table of mean ± std over seeds, one line per ``(dataset, key)`` group."""
    head = (
        f"| config | {key} | seeds | val % | test % (dynamic) | best test epoch % (paper, optimistic) | "
        "folded float % | fixed point % | static fixed point % | neurons | spikes/inf | synops/inf | energy/inf (µJ) |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        name = row["model"] if key == "model" else "-".join(map(str, row["kernels"]))
        groups.setdefault((row["dataset"], name), []).append(row)
    for (dataset, name), group in groups.items():
        col = {c: [r.get(c) for r in group] for c in COLUMNS}  # rows of older benches lack test_best_epoch
        lines.append(
            f"| {dataset} | {name} | {len(group)} | {_cell(col['val'], 100)} | {_cell(col['test'], 100)} | "
            f"{_cell(col['test_best_epoch'], 100)} | {_cell(col['folded_float'], 100)} | "
            f"{_cell(col['fixed_point'], 100)} | {_cell(col['static_fixed_point'], 100)} | "
            f"{_cell(col['neurons'], digits=0)} | {_cell(col['spikes'], digits=0)} | {_cell(col['synops'], digits=0)} | "
            f"{_cell(col['energy_uj'], digits=2)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny synthgesture, 1 epoch, 2 seeds, ablation sets 1 and 1-3-5-7",
    )
    p.add_argument(
        "--datasets",
        "--configs",
        nargs="+",
        default=None,
        help="configs in train/configs by name: a dataset's own config is named after it, dvsgesture-small is "
        "the 128x128 DVS Gesture net on synthgesture (default: synthgesture ndigits; quick: synthgesture)",
    )
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 per model (default 3; quick 2)")
    p.add_argument("--first-seed", type=int, default=0, help="start the seeds here (to split one bench over machines)")
    p.add_argument("--epochs", type=int, default=None, help="override each config's epochs")
    p.add_argument("--no-ablation", action="store_true", help="skip the number-of-scales ablation")
    p.add_argument(
        "--scales",
        nargs="+",
        type=parse_kernels,
        default=None,
        help="ablation kernel sets, e.g. 1 1-3 (default: 1 1-3 1-3-5 1-3-5-7; quick: 1 1-3-5-7)",
    )
    p.add_argument(
        "--models",
        nargs="*",
        choices=MODELS,
        default=list(DEFAULT_MODELS),
        help="models to train and measure (none: ablation only)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench-accuracy"), help="folder for runs and results")
    p.add_argument(
        "--reexport",
        action="store_true",
        help="runs already trained in --out are exported and measured again, not retrained (after a fold change)",
    )
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/tensors"), help="binned tensors")
    p.add_argument("--data-root", default="data", help="folder of on-disk datasets")
    args = p.parse_args(argv)
    datasets = args.datasets or (["synthgesture"] if args.quick else ["synthgesture", "ndigits"])
    seeds = range(args.first_seed, args.first_seed + (args.seeds or (2 if args.quick else 3)))
    scales = [] if args.no_ablation else [list(k) for k in (args.scales or (QUICK_SCALES if args.quick else SCALES))]
    own = list(load_config(CONFIG_DIR / f"{datasets[0]}.yaml").sma.kernel_sizes)
    jobs = [(d, m, s, None) for d in datasets for m in args.models for s in seeds]
    # The config's own kernel set is the sma-vgg run: the ablation reuses it instead of training it twice.
    jobs += [(datasets[0], "sma-vgg", s, None if k == own else tuple(k)) for k in scales for s in seeds]
    jobs = list(dict.fromkeys(jobs))
    rows = load_rows(args.out / "rows.json")
    if args.reexport:  # measured again below: drop their old rows
        keys = {row_key(dict(zip(("dataset", "model", "seed", "kernels"), job))) for job in jobs}
        rows = [r for r in rows if row_key(r) not in keys]
    done = {row_key(r) for r in rows}
    todo = [job for job in jobs if row_key(dict(zip(("dataset", "model", "seed", "kernels"), job))) not in done]
    if len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already in {args.out / 'rows.json'}: not repeated")
    for dataset, model, seed, kernels in progress_bar(todo, desc="bench runs", unit="run"):
        rows.append(run_one(dataset, model, seed, args.out, args, list(kernels) if kernels else None))
        atomic_write_json(args.out / "rows.json", rows)  # a partial table survives an interrupted bench
    text = "## Models\n\n" + table([r for r in rows if r["kernels"] is None], "model")
    if scales:
        text += "\n\n## Number of SMA scales (sma-vgg)\n\n" + table(ablation_rows(rows, datasets[0], own), "kernels")
    atomic_write(args.out / "table.md", lambda fh: fh.write((text + "\n").encode()))
    plot_accuracy_energy(rows, args.out / "accuracy_vs_energy.png")
    print(text)
    print(f"\nrows: {args.out / 'rows.json'}; plot: {args.out / 'accuracy_vs_energy.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
