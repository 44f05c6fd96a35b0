"""Does the full-size network learn from its first steps? A few optimizer steps of a config, then its output.

``python bench/full_net_steps.py --config train/configs/dvsgesture.yaml --steps 20 --batch-size 2``

Trains the config's network (its readout, loss, neurons, norm, optimizer) for ``--steps`` steps on
synthgesture at the config's input size (generated, no download), printing each block's
weight-gradient norm and firing rate (``train.monitor``), then evaluates a held batch: the share
of samples whose output is silent (spiking readout) or undecided, and the spread of the output
(spike counts or final voltages). It checks that the recipe does not go silent at full size on a
CPU budget; it is no accuracy measurement.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from chipnet.decision import decide_output
from chipnet.progress import progress_bar
from train.config import load_config
from train.data import FrameDataset
from train.loop import make_optimizer, seed_everything
from train.models import build_model
from train.models.readout import logits, make_loss
from train.monitor import EpochMonitor


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="train/configs/dvsgesture.yaml")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=None, help="override the config's lr")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    cfg = load_config(args.config)
    cfg.dataset, cfg.dataset_options, cfg.seed = "synthgesture", {"samples_per_class": 4, "seed": 0}, args.seed
    if args.lr is not None:
        cfg.optim.lr = args.lr
    seed_everything(cfg.seed)
    data = FrameDataset(
        cfg.dataset,
        "train",
        cfg.input_size,
        cfg.timesteps,
        cfg.dataset_options,
        cfg.cache_dir,
        binning=cfg.binning,
        encoding=cfg.encoding,
    )
    net = build_model(cfg, num_classes=len(data.classes))
    net.materialize()
    loss_fn = make_loss(cfg.readout.kind, cfg.readout.loss, cfg.readout.true_rate, cfg.readout.false_rate)
    optimizer, _ = make_optimizer(cfg, net)  # the config's lr, without its warm-up (steps, not epochs)
    monitor = EpochMonitor(net, cfg.readout.kind)
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    batches = iter(loader)
    net.train()
    losses, t0 = [], time.perf_counter()
    for _ in progress_bar(range(args.steps), desc="steps"):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        out = net(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad()
        loss.backward()
        monitor.after_backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - t0
    inside = monitor.summary()
    net.eval()
    x = torch.stack([data[i][0] for i in range(min(len(data), 16))])
    with torch.no_grad():
        out = net(x)
    decision = decide_output(out, cfg.readout.kind)
    scores = logits(out, cfg.readout.kind)
    result = {
        "config": args.config,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seconds_per_step": seconds / args.steps,
        "loss_first_last": [losses[0], losses[-1]],
        "grad_norm": inside["grad_norm"],
        "firing_rate": inside["firing_rate"],
        "eval_samples": int(x.shape[0]),
        "eval_undecided": decision.undecided,
        "eval_silent": int((out.reshape(out.shape[0], -1) == 0).all(1).sum()) if cfg.readout.kind == "spikes" else None,
        "eval_output_spread": float((scores.max(1).values - scores.min(1).values).mean()),
        "eval_predicted_classes": sorted(set(decision.predictions.tolist())),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
