"""SLAYER networks; ``build_model`` picks one by name from a training config."""
from __future__ import annotations

import torch

from train.config import TrainConfig
from train.errors import ConfigError
from train.models.vgg import VGG

MODELS = {"vgg": VGG}


def build_model(cfg: TrainConfig, num_classes: int) -> torch.nn.Module:
    """The network named by ``cfg.model``, sized for ``cfg`` and ``num_classes``."""
    try:
        cls = MODELS[cfg.model]
    except KeyError:
        raise ConfigError(f"unknown model {cfg.model!r}; known: {', '.join(sorted(MODELS))}") from None
    return cls(
        in_channels=2,
        input_size=cfg.input_size,
        num_classes=num_classes,
        channels=list(cfg.channels),
        hidden=cfg.hidden,
        neuron=vars(cfg.neuron) if not isinstance(cfg.neuron, dict) else cfg.neuron,
    )
