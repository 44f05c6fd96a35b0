"""The tests' one check that an exported file computes what its torch chip form computes (emu, every layer)."""

from __future__ import annotations

import numpy as np
import torch

from chipnet.netmodel import NetFile
from lava_runtime import emu
from lava_runtime.records import LayerRecord
from train.config import TrainConfig

# The neuron preset of the 128×128 configs (docs/design.md, "Neurons").
LIF = {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.5, "tau_grad": 0.005, "scale_grad": 10.0}


def tiny_config(timesteps: int, **options: object) -> TrainConfig:
    """A 16×16 two-conv network with the 128×128 configs' recipe (voltage readout, biases, LIF preset); ``options`` override."""
    base = dict(
        input_size=16,
        timesteps=timesteps,
        channels=[4, 6],
        hidden=8,
        norm="batch",
        bias=True,
        readout="voltage",
        loss="ce",
        neuron=LIF,
    )
    return TrainConfig.from_dict({**base, **options})


def assert_file_equals_chip(chip: torch.nn.Module, netfile: NetFile, x: np.ndarray) -> list[LayerRecord]:
    """Every layer's spikes of ``netfile`` on emu equal ``chip``'s, and a voltage readout's ``v`` is 2**12 × its voltage."""
    with torch.no_grad():
        outs = chip.forward_all(torch.from_numpy(x.astype(np.float32)))
    outs = [o.numpy() for o, b in zip(outs, chip.blocks) if type(b).__name__ != "Flatten"]
    records = emu.emulate(netfile, x, record="all")
    voltage = netfile.readout == "voltage"
    for rec, ref in zip(records[:-1] if voltage else records, outs):
        ref = ref.transpose(0, 3, 2, 1, 4) if ref.ndim == 5 else ref
        np.testing.assert_array_equal(rec.spikes, ref, err_msg=rec.name)
    if voltage:
        assert records[-1].spikes.sum() == 0  # the integrators never fire
        np.testing.assert_array_equal(records[-1].voltage, outs[-1] * 4096)  # Loihi's v: 2**12 × the float voltage
    return records
