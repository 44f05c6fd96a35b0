"""SLAYER networks; ``build_model`` picks one by name from a training config."""

from __future__ import annotations

import torch

from chipnet.errors import ConfigError
from train.config import TrainConfig
from train.models.fold import attention_blocks, fold_network
from train.models.ma_vgg import MAVGG
from train.models.norm import NORMS
from train.models.pool import POOLS
from train.models.readout import READOUTS
from train.models.sma_spiking import SMA_BLOCKS
from train.models.sma_vgg import SMAVGG, attention_layers
from train.models.vgg import VGG, wide_conv

MODELS = ("vgg", "vgg7", "sma-vgg", "sma-azo-vgg", "ma-vgg")
FOLDED = ("none", "per-timestep", "static")


def check_options(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` for a model option outside its choices (before anything is binned)."""
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model {cfg.model!r}; known: {', '.join(MODELS)}")
    choices = {"norm": NORMS, "pool": POOLS, "readout": READOUTS, "folded": FOLDED, "sma_block": SMA_BLOCKS}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {allowed}, got {getattr(cfg, name)!r}")
    if cfg.sma_block == "spiking" and cfg.folded != "none":
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
        readout=cfg.readout,
        bias=cfg.bias,
        pool=cfg.pool,
    )
    if cfg.model in ("vgg", "vgg7"):
        if cfg.folded != "none":
            raise ConfigError(
                f"folded applies to sma-vgg, sma-azo-vgg and ma-vgg only: {cfg.model} has no attention blocks"
            )
        if cfg.model == "vgg":
            return VGG(**common)
        # vgg7: 7×7 convs where sma-vgg has its SMA blocks (sma_layers, or the paper's placement)
        try:
            layers = attention_layers(cfg.sma_layers, len(cfg.channels), "SMA")
        except ValueError as e:
            raise ConfigError(f"model 'vgg7': {e}") from None
        return VGG(**common, conv_block=wide_conv(layers, max(cfg.sma_kernel_sizes)))
    try:
        if cfg.model == "ma-vgg":
            net = MAVGG(
                **common,
                timesteps=cfg.timesteps,
                ma_layers=cfg.ma_layers,
                attention=cfg.ma_attention,
                reduction=cfg.ma_reduction,
            )
        else:
            net = SMAVGG(
                **common,
                timesteps=cfg.timesteps,
                kernel_sizes=tuple(cfg.sma_kernel_sizes),
                sma_layers=cfg.sma_layers,
                temporal_reduction=cfg.sma_temporal_reduction,
                channel_reduction=cfg.sma_channel_reduction,
                azo=cfg.model == "sma-azo-vgg",
                azo_delta_t=cfg.azo_delta_t,
                azo_delta_c=cfg.azo_delta_c,
                form=cfg.sma_block,
            )
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
