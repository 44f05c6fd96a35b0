"""What does lava_runtime's counting cost over a bare stock NetX run of the same file?

Runs the same exported network on the same samples, in one process, twice per round:

* **bare**: stock ``netx.hdf5.Network`` fed by a ``RingBuffer`` source, the output layer
  recorded by a ``RingBuffer`` sink (what a NetX tutorial does), no counting;
* **lava_runtime**: ``lava_runtime.simulate.simulate`` as ``run`` uses it (per-layer
  ``ActivityCounter`` sinks for spikes and synops, gain neurons where the file has gains).

Both time graph construction, compilation, the run and reading the results back. Rounds
alternate the order so that warm-up favours neither. Prints timesteps/s of both and the ratio
(goal: counting ≤ 1.10×).

    python bench/lava_overhead.py --net runs/demo/model.net --samples 16
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from lava.lib.dl import netx
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.sink import RingBuffer as SinkBuffer
from lava.proc.io.source import RingBuffer as SourceBuffer

from lava_runtime.graph import to_lava_layout
from lava_runtime.runner import read_net_metadata
from lava_runtime.simulate import simulate
from train.data import FrameDataset


def bare_netx(net_path: str, spikes: np.ndarray) -> np.ndarray:
    """Output spikes of a stock NetX run: source → network → sink, nothing else."""
    t = spikes.shape[-1]
    steps = spikes.shape[0] * t
    net = netx.hdf5.Network(net_config=net_path, reset_interval=t, reset_offset=1)
    source = SourceBuffer(data=to_lava_layout(spikes).astype(np.int32))
    sink = SinkBuffer(shape=net.out.shape, buffer=steps)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return sink.data.get()
    finally:
        net.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default="runs/demo/model.net", help="exported network (make demo writes one)")
    p.add_argument("--samples", type=int, default=16, help="samples per measurement")
    p.add_argument("--rounds", type=int, default=2, help="measurements of each, alternating order")
    args = p.parse_args()
    meta = read_net_metadata(args.net)
    data = FrameDataset(
        meta["dataset"],
        "test",
        meta["input_shape"][-1],
        meta["timesteps"],
        meta.get("dataset_options", {}),
        limit=args.samples,
    )
    steps = len(data.spikes) * meta["timesteps"]
    times: dict[str, list[float]] = {"bare": [], "lava_runtime": []}
    runs = {
        "bare": lambda: bare_netx(str(Path(args.net)), data.spikes),
        "lava_runtime": lambda: simulate(args.net, data.spikes),
    }
    for r in range(args.rounds):
        for name in ("bare", "lava_runtime") if r % 2 == 0 else ("lava_runtime", "bare"):
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    rate = {k: steps / statistics.median(v) for k, v in times.items()}
    for k, v in rate.items():
        print(f"{k:13s}: {v:8.1f} timesteps/s (median of {args.rounds}, {steps} steps each)")
    print(f"lava_runtime costs {rate['bare'] / rate['lava_runtime']:.3f}x the time of a bare NetX run (goal <= 1.10x)")


if __name__ == "__main__":
    main()
