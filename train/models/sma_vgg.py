"""SMA-VGG and SMA-AZO-VGG: the VGG with SMA blocks in place of some of its conv blocks."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from train.config import SMA_BLOCKS, TrainConfig
from train.models.attention import attention_layers
from train.models.azo import AttentionZoneout, paper_deltas
from train.models.norm import neuron_params
from train.models.sma import SMAConv
from train.models.sma_spiking import SpikingSMAConv
from train.models.vgg import VGG, plain_conv


class SMAVGG(VGG):
    """The VGG of ``train.models.vgg`` with SMA blocks (stride 2, same widths) at ``sma_layers``.

    ``form``: ``linear`` (:class:`~train.models.sma.SMAConv`, branches read the input and stay linear)
    or ``spiking`` (:class:`~train.models.sma_spiking.SpikingSMAConv`, the authors' block).
    ``attention``: ``se`` (the paper's) or ``static`` (learned weights independent of the input).
    """

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        num_classes: int,
        channels: list[int],
        hidden: int | list[int],
        neuron: dict[str, Any],
        timesteps: int,
        kernel_sizes: Sequence[int] = (1, 3, 5, 7),
        sma_layers: Sequence[int] | None = None,
        temporal_reduction: int = 4,
        channel_reduction: int = 4,
        azo: bool = False,
        azo_delta_t: int | None = None,
        azo_delta_c: int | None = None,
        form: str = "linear",
        attention: str = "se",
        **options: Any,
    ) -> None:
        if form not in SMA_BLOCKS:
            raise ValueError(f"sma_block must be one of {SMA_BLOCKS}, got {form!r}")
        layers = attention_layers(sma_layers, len(channels), "SMA")
        n = len(kernel_sizes)

        def conv_block(index: int, params: dict[str, Any], cin: int, cout: int, stride: int = 2) -> torch.nn.Module:
            if index not in layers:
                return plain_conv(index, params, cin, cout, stride)
            zoneout = None
            if azo:
                dt, dc = paper_deltas(timesteps, cout)
                dt = dt if azo_delta_t is None else int(azo_delta_t)
                dc = dc if azo_delta_c is None else int(azo_delta_c)
                if not (1 <= dt <= timesteps - 1 and 1 <= dc <= cout):
                    raise ValueError(
                        f"AZO in conv layer {index}: need 1 <= delta_t <= T-1 = {timesteps - 1} and "
                        f"1 <= delta_c <= {cout} channels, got delta_t={dt}, delta_c={dc}"
                    )
                zoneout = AttentionZoneout(dt, dc)
            shared = {
                "stride": stride,
                "temporal_reduction": temporal_reduction,
                "channel_reduction": channel_reduction,
                "azo": zoneout,
                "attention": attention,
            }
            if form == "spiking":  # branch neurons: the layer's norm (or bias) on each of the N·C channels
                branch = neuron_params(
                    {**neuron, "requires_grad": False},
                    options.get("norm", "none"),
                    n * cout,
                    bias=options.get("bias", False),
                )
                return SpikingSMAConv(params, branch, cin, cout, timesteps, kernel_sizes, **shared)
            # Uniform attention weighs each of N independent branches by 1/N², so Z's spread is
            # N^-1.5 of one branch: scaling the plain conv's weight_scale of 2 by N^1.5 starts the
            # SMA layer near the plain conv's firing rate (measured: 0.030 vs 0.044, ×1 gives 0.012).
            return SMAConv(params, cin, cout, timesteps, kernel_sizes, weight_scale=2 * n**1.5, **shared)

        # options: the VGG's own (norm, dropout, readout, bias, pool)
        super().__init__(in_channels, input_size, num_classes, channels, hidden, neuron, conv_block, **options)
        self.sma_layers = layers
        self.sma_block = form
        self.sizing_timesteps = timesteps

    @classmethod
    def from_config(cls, cfg: TrainConfig, common: dict[str, Any], azo: bool = False) -> SMAVGG:
        """The network of ``cfg``'s SMA options, with AZO or without; ``common``: the VGG's own options."""
        return cls(
            **common,
            timesteps=cfg.timesteps,
            kernel_sizes=tuple(cfg.sma.kernel_sizes),
            sma_layers=cfg.sma.layers,
            temporal_reduction=cfg.sma.temporal_reduction,
            channel_reduction=cfg.sma.channel_reduction,
            azo=azo,
            azo_delta_t=cfg.azo.delta_t,
            azo_delta_c=cfg.azo.delta_c,
            form=cfg.sma.block,
            attention=cfg.sma.attention,
        )

    @property
    def sma_blocks(self) -> list[SMAConv | SpikingSMAConv]:
        """The SMA blocks, in network order."""
        return [b for b in self.blocks if isinstance(b, (SMAConv, SpikingSMAConv))]
