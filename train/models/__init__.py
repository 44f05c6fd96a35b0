"""SLAYER networks; ``build_model`` picks one by name from a training config."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import torch

from chipnet.errors import ConfigError
from train.config import TrainConfig, check_choices
from train.models.attention import attention_layers
from train.models.fold import attention_blocks, fold_network
from train.models.ma_vgg import MAVGG
from train.models.sma_vgg import SMAVGG
from train.models.vgg import VGG, wide_conv


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it from a config, and whether it has attention blocks to fold."""

    build: Callable[[TrainConfig, dict[str, Any]], torch.nn.Module]  # (config, the VGG's own options) → network
    attention: bool


def _vgg7(cfg: TrainConfig, common: dict[str, Any]) -> torch.nn.Module:
    """7×7 convs where sma-vgg has its SMA blocks (sma_layers, or the paper's placement)."""
    return VGG(
        **common,
        conv_block=wide_conv(attention_layers(cfg.sma.layers, len(cfg.channels), "SMA"), max(cfg.sma.kernel_sizes)),
    )


# One line per model; a new model (e.g. a VGG with a new attention block) is its file plus a line here.
MODELS: dict[str, ModelSpec] = {
    "vgg": ModelSpec(lambda cfg, common: VGG(**common), attention=False),
    "vgg7": ModelSpec(_vgg7, attention=False),
    "sma-vgg": ModelSpec(partial(SMAVGG.from_config, azo=False), attention=True),
    "sma-azo-vgg": ModelSpec(partial(SMAVGG.from_config, azo=True), attention=True),
    "ma-vgg": ModelSpec(MAVGG.from_config, attention=True),
}


def check_options(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` for a model option outside its choices (before anything is binned)."""
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model {cfg.model!r}; known: {', '.join(MODELS)}")
    check_choices(cfg)
    if cfg.sma.block == "spiking" and cfg.folded != "none":
        raise ConfigError(
            "folded (deploy-aware fine-tuning) needs sma_block: linear; the spiking form deploys as two layers "
            "per SMA block and has no trainable folded shell"
        )


def build_model(cfg: TrainConfig, num_classes: int) -> torch.nn.Module:
    """The network named by ``cfg.model``, sized for ``cfg`` and ``num_classes``."""
    check_options(cfg)
    common = dict(
        in_channels=2,
        input_size=cfg.input_size,
        num_classes=num_classes,
        channels=list(cfg.channels),
        hidden=cfg.hidden,
        neuron=vars(cfg.neuron) if not isinstance(cfg.neuron, dict) else cfg.neuron,
        norm=cfg.norm,
        dropout=cfg.dropout,
        readout=cfg.readout.kind,
        bias=cfg.bias,
        pool=cfg.pool,
    )
    spec = MODELS[cfg.model]
    if cfg.folded != "none" and not spec.attention:
        attentive = ", ".join(name for name, m in MODELS.items() if m.attention)
        raise ConfigError(f"folded applies to {attentive} only: {cfg.model} has no attention blocks")
    try:
        net = spec.build(cfg, common)
    except ValueError as e:
        raise ConfigError(f"model {cfg.model!r}: {e}") from None
    if cfg.folded == "none":
        return net
    # The deployable form: each attention block becomes a FoldedConv of the same shape (its weights
    # and gains come from the checkpoint or from calibration).
    net.materialize()
    with torch.no_grad():  # a zero kernel needs no rescaling, so the shell keeps the configured threshold
        for block in attention_blocks(net):
            for synapse in getattr(block, "branches", None) or [block.synapse]:
                synapse.weight.zero_()
    uniform = [b.uniform_scale() for b in attention_blocks(net)]
    folded, _ = fold_network(net, uniform, per_timestep=cfg.folded == "per-timestep")
    return folded.train()
