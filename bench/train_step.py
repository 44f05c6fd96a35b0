"""Training-step cost of vgg, sma-vgg and sma-azo-vgg, measured side by side in one run.

``python bench/train_step.py --config train/configs/synthgesture.yaml --batch-size 16``

Each model gets the same random spike batch of the config's shape. Step time (forward, loss,
backward, AdamW step) is the median over ``--rounds`` rounds that take the models in turn; the
time ratio is the median of the per-round ratios, so load from other processes falls on all of
them alike. Peak memory: on CUDA the allocator's peak during steps above what is allocated before
them; on CPU, a fresh process per model reports its peak RSS during steps above its RSS before
them (ru_maxrss). On CPU, glibc malloc is set up as training sets it (``train/allocator.py``;
``--glibc-defaults`` measures without). Goal (issue 4): SMA at most 1.3× the plain network's step
time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from lava.lib.dl import slayer

from train.allocator import keep_freed_memory
from train.config import TrainConfig, load_config
from train.models import MODELS, build_model

GOAL = 1.3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument(
        "--config", default="train/configs/synthgesture.yaml", help="training config giving the networks' shape"
    )
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated models; the first is the reference")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the config's)")
    p.add_argument("--timesteps", type=int, default=None, help="time bins (default: the config's)")
    p.add_argument("--classes", type=int, default=11, help="output classes")
    p.add_argument("--steps", type=int, default=5, help="timed steps per model per round")
    p.add_argument("--rounds", type=int, default=4, help="rounds over the models (median step time over all)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="leave glibc malloc as it is (training on CPU raises its thresholds: train/allocator.py)",
    )
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # internal: one model's CPU peak
    return p.parse_args(argv)


class Stepper:
    """One model with its optimizer, loss and a fixed batch: ``step()`` is one training step."""

    def __init__(self, cfg: TrainConfig, model: str, classes: int, device: torch.device) -> None:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "model": model})
        torch.manual_seed(0)
        self.net = build_model(cfg, classes)
        self.net.materialize()
        self.net.to(device).train()
        self.params = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.optim.lr)
        self.loss = slayer.loss.SpikeRate(
            true_rate=cfg.readout.true_rate, false_rate=cfg.readout.false_rate, reduction="mean"
        ).to(device)
        g = torch.Generator().manual_seed(1)
        shape = (cfg.batch_size, 2, cfg.input_size, cfg.input_size, cfg.timesteps)
        self.x = (torch.rand(shape, generator=g) < 0.1).float().to(device)
        self.y = torch.randint(0, classes, (cfg.batch_size,), generator=g).to(device)
        self.device = device

    def step(self) -> None:
        out = self.net(self.x)
        loss = self.loss(out, self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def timed(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps."""
        self._sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        self._sync()
        return (time.perf_counter() - t0) / steps

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_probe(cfg: TrainConfig, model: str, classes: int) -> int:
    """CPU: peak RSS during two training steps above the RSS before them (this process only)."""
    s = Stepper(cfg, model, classes, torch.device("cpu"))
    # Reset the RSS high-water mark (Linux ≥ 4.0) so that imports and model building do not hide
    # the steps' peak.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmRSS")
    s.step()
    s.step()
    return (_status_kib("VmHWM") - before) * 1024


def peak_memory(args: argparse.Namespace, cfg: TrainConfig, stepper: Stepper, model: str) -> int:
    """Peak training-step memory of ``model`` in bytes (see the module docstring)."""
    if stepper.device.type == "cuda":
        torch.cuda.synchronize(stepper.device)
        base = torch.cuda.memory_allocated(stepper.device)
        torch.cuda.reset_peak_memory_stats(stepper.device)
        stepper.step()
        torch.cuda.synchronize(stepper.device)
        return torch.cuda.max_memory_allocated(stepper.device) - base
    cmd = [
        sys.executable,
        __file__,
        "--config",
        args.config,
        "--classes",
        str(args.classes),
        "--memory-probe",
        model,
        "--batch-size",
        str(cfg.batch_size),
        "--timesteps",
        str(cfg.timesteps),
        "--threads",
        str(args.threads),
    ]
    cmd += ["--glibc-defaults"] if args.glibc_defaults else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    malloc = "glibc defaults"
    if not args.glibc_defaults and args.device == "cpu" and keep_freed_memory():  # as train.loop does on CPU
        malloc = "malloc keeps freed memory"
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    if args.batch_size:
        cfg.batch_size = args.batch_size
    if args.timesteps:
        cfg.timesteps = args.timesteps
    if args.memory_probe:
        print(memory_probe(cfg, args.memory_probe, args.classes))
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda asked for, but torch finds no CUDA device", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    models = args.models.split(",")
    steppers = {m: Stepper(cfg, m, args.classes, device) for m in models}
    for s in steppers.values():
        for _ in range(args.warmup):
            s.step()
    times: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(args.rounds):
        for m, s in steppers.items():
            times[m].append(s.timed(args.steps))
    results = []
    for m in models:
        step_s = statistics.median(times[m])
        results.append(
            {
                "model": m,
                "params": steppers[m].params,
                "step_s": step_s,
                "samples_per_s": cfg.batch_size / step_s,
                "peak_bytes": peak_memory(args, cfg, steppers[m], m),
            }
        )
    ref = results[0]
    for r in results:
        # Each round times the models back to back, so the machine's drift (other jobs, memory
        # bandwidth) falls on all of them alike within a round: the ratio is the median of the
        # per-round ratios, not the ratio of medians taken from different moments.
        r["time_ratio"] = statistics.median(a / b for a, b in zip(times[r["model"]], times[ref["model"]]))
        r["memory_ratio"] = r["peak_bytes"] / ref["peak_bytes"] if ref["peak_bytes"] > 0 else float("nan")

    print(
        f"{args.config}: batch {cfg.batch_size}, {cfg.input_size}×{cfg.input_size}, T={cfg.timesteps}, "
        f"channels {cfg.channels}, device {device}, {torch.get_num_threads()} threads, "
        f"median of {args.rounds} rounds × {args.steps} steps" + (f", {malloc}" if device.type == "cpu" else "")
    )
    print(f"{'model':<13}{'params':>10}{'step ms':>10}{'samples/s':>11}{'peak MiB':>10}{'time ×':>8}{'mem ×':>7}")
    for r in results:
        print(
            f"{r['model']:<13}{r['params']:>10}{r['step_s'] * 1e3:>10.1f}{r['samples_per_s']:>11.1f}"
            f"{r['peak_bytes'] / 2**20:>10.1f}{r['time_ratio']:>8.2f}{r['memory_ratio']:>7.2f}"
        )
    worst = max(r["time_ratio"] for r in results[1:]) if len(results) > 1 else 1.0
    print(f"goal: SMA step time ≤ {GOAL}× {ref['model']}: {'met' if worst <= GOAL else 'NOT met'} (worst {worst:.2f}×)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "config": args.config,
                    "device": str(device),
                    "batch_size": cfg.batch_size,
                    "timesteps": cfg.timesteps,
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
