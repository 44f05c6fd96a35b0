"""How much does per-layer monitoring cost on the Lava simulator?

Runs the same exported network on the same samples twice, in one process: once recording every
spike of every layer (stock ``RingBuffer`` sinks), once with ``SpikeCounter`` sinks (per-step
totals, what reports use), and prints timesteps/s of both and their ratio.

    python bench/lava_counting.py --net runs/demo/model.net --samples 16
"""
from __future__ import annotations

import argparse
import time

from lava_runtime.deploy import read_net_metadata
from lava_runtime.simulate import run_layers
from train.data import FrameDataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default="runs/demo/model.net", help="exported network (make demo writes one)")
    p.add_argument("--samples", type=int, default=16, help="samples per measurement")
    args = p.parse_args()
    meta = read_net_metadata(args.net)
    data = FrameDataset(meta["dataset"], "test", meta["input_shape"][-1], meta["timesteps"],
                        meta.get("dataset_options", {}), limit=args.samples)
    steps = args.samples * meta["timesteps"]
    rates = {}
    for record in ("output", "all"):
        t0 = time.perf_counter()
        layers = run_layers(args.net, data.spikes, record=record)
        rates[record] = steps / (time.perf_counter() - t0)
        print(f"record={record:6s}: {rates[record]:8.1f} timesteps/s ({sum(int(r.counts.sum()) for r in layers)} spikes)")
    print(f"SpikeCounter monitoring is {rates['output'] / rates['all']:.1f}x faster than recording every spike")


if __name__ == "__main__":
    main()
