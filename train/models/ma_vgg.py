"""MA-VGG: the VGG with MA-SNN attention blocks (``train.models.ma``) in place of some of its conv blocks."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from train.config import TrainConfig
from train.models.attention import attention_layers
from train.models.ma import MAConv
from train.models.vgg import VGG, plain_conv

# Sigmoid attention starts near 1/2 per dimension, so TCA scales the current by ~1/4 and TCSA by
# ~1/8: the plain conv's weight_scale of 2 times that inverse starts the MA layer near the plain
# conv's firing rate (the comparison of spike counts is then about what the attention learns).
INIT_ATTENTION = {"tca": 0.25, "tcsa": 0.125}


class MAVGG(VGG):
    """The VGG of ``train.models.vgg`` with MA blocks (3×3, stride 2, same widths) at ``ma_layers``."""

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        num_classes: int,
        channels: list[int],
        hidden: int | list[int],
        neuron: dict[str, Any],
        timesteps: int,
        ma_layers: Sequence[int] | None = None,
        attention: str = "tca",
        reduction: int = 4,
        **options: Any,
    ) -> None:
        layers = attention_layers(ma_layers, len(channels), "MA")
        if attention not in INIT_ATTENTION:
            raise ValueError(f"ma_attention must be one of {tuple(INIT_ATTENTION)}, got {attention!r}")

        def conv_block(index: int, params: dict[str, Any], cin: int, cout: int, stride: int = 2) -> torch.nn.Module:
            if index not in layers:
                return plain_conv(index, params, cin, cout, stride)
            return MAConv(
                params,
                cin,
                cout,
                timesteps,
                3,
                stride=stride,
                attention=attention,
                reduction=reduction,
                weight_scale=2 / INIT_ATTENTION[attention],
            )

        # options: the VGG's own (norm, dropout, readout, bias, pool)
        super().__init__(in_channels, input_size, num_classes, channels, hidden, neuron, conv_block, **options)
        self.ma_layers = layers
        self.sizing_timesteps = timesteps

    @classmethod
    def from_config(cls, cfg: TrainConfig, common: dict[str, Any]) -> MAVGG:
        """The network of ``cfg``'s MA options; ``common``: the VGG's own options."""
        return cls(
            **common,
            timesteps=cfg.timesteps,
            ma_layers=cfg.ma.layers,
            attention=cfg.ma.attention,
            reduction=cfg.ma.reduction,
        )
