"""How much faster is the emulator than Lava's fixed-point simulator, on the same file and samples?

Runs ``--sim-samples`` samples (and half of them) on ``sim`` and all ``--samples`` on ``emu`` in one process,
prints samples/s of both and their ratio, the emulator's time for the whole split, and checks
that both give the same spikes on the samples they share.

    python bench/emulator.py                                  # DVS-Gesture-sized: 264 samples, T=16, 32×32×2, 3 convs
    python bench/emulator.py --net runs/demo/model.net --dataset synthgesture --samples 64

Without ``--net`` it exports an untrained SMA-free VGG (3 conv layers of 16, 32 and 64 channels,
random SLAYER weights) to a temporary file; without ``--dataset`` the inputs are random spikes
at ``--rate`` (DVS-like sparsity).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chipnet.netfile import read_net
from chipnet.netwriter import write_netx
from lava_runtime import emu
from lava_runtime.runner import load_samples
from lava_runtime.simulate import simulate
from train.config import TrainConfig
from train.models import build_model


def gesture_sized_net(path: Path, timesteps: int) -> Path:
    """An untrained 3-conv VGG on 32×32×2 inputs with 11 outputs, exported like a trained run."""
    torch.manual_seed(0)
    cfg = TrainConfig(input_size=32, timesteps=timesteps, channels=[16, 32, 64], hidden=64)
    model = build_model(cfg, num_classes=11)
    write_netx(
        model,
        path,
        {
            "timesteps": timesteps,
            "input_shape": [2, 32, 32],
            "classes": [str(i) for i in range(11)],
            "dataset": None,
            "model": cfg.model,
        },
    )
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default=None, help="exported network (default: an untrained 3-conv VGG, see above)")
    p.add_argument("--dataset", default=None, help="dataset for the samples (default: random spikes)")
    p.add_argument("--split", default="test", help="dataset split")
    p.add_argument("--samples", type=int, default=264, help="samples for emu (DVS Gesture's test split has 264)")
    p.add_argument("--sim-samples", type=int, default=16, help="samples for sim (also run with half of them)")
    p.add_argument("--timesteps", type=int, default=16, help="T for the default network")
    p.add_argument("--rate", type=float, default=0.05, help="spike probability of the random inputs")
    p.add_argument("--batch-size", type=int, default=64, help="emu samples per batch")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for emu")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        net_path = Path(args.net) if args.net else gesture_sized_net(Path(tmp) / "vgg3.net", args.timesteps)
        net = read_net(net_path)
        if args.dataset:
            spikes = load_samples(net_path, args.dataset, args.split, args.samples).spikes
        else:
            rng = np.random.default_rng(0)
            spikes = (rng.random((args.samples, *net.input_shape, net.timesteps)) < args.rate).astype(np.uint8)
        n, t = spikes.shape[0], spikes.shape[-1]
        print(
            f"{net_path}: {len(net.layers)} layers {net.layer_names}, input {list(net.input_shape)}, T={t}, "
            f"emu on {args.threads} torch thread(s)"
        )
        t0 = time.perf_counter()
        fast = emu.emulate(net, spikes, batch_size=args.batch_size, threads=args.threads)
        emu_s = time.perf_counter() - t0
        m = min(args.sim_samples, n)
        half = max(1, m // 2)
        t0 = time.perf_counter()
        simulate(net_path, spikes[:half], backend="sim")
        half_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        slow = simulate(net_path, spikes[:m], backend="sim")
        sim_s = time.perf_counter() - t0
    emu_rate, sim_rate = n / emu_s, m / sim_s
    # Lava's compile and start cost is paid once per run: the difference of two runs gives the
    # simulator's own per-sample rate, the fairest figure for long runs.
    marginal = (m - half) / (sim_s - half_s) if m > half and sim_s > half_s else sim_rate
    same = np.array_equal(fast[-1].spikes[:m], slow[-1].spikes) and all(
        np.array_equal(a.counts[:m], b.counts) for a, b in zip(fast, slow)
    )
    print(
        f"sim: {m:4d} samples in {sim_s:7.2f} s = {sim_rate:8.2f} samples/s "
        f"({half} samples took {half_s:.2f} s: {marginal:.2f} samples/s without start-up)"
    )
    print(
        f"emu: {n:4d} samples in {emu_s:7.2f} s = {emu_rate:8.2f} samples/s "
        f"({sum(int(r.counts.sum()) for r in fast)} spikes)"
    )
    print(
        f"emu is {emu_rate / sim_rate:.0f}x faster than sim ({emu_rate / marginal:.0f}x against sim without "
        f"start-up); spikes on the {m} shared samples {'identical' if same else 'DIFFER'} "
        f"(every layer's counts, output spikes)"
    )


if __name__ == "__main__":
    main()
