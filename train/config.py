"""Training configuration: one dataclass, loaded from YAML, overridden from the command line."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from train.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class NeuronConfig:
    """SLAYER CUBA neuron parameters (lava-dl's ``neuron_params``)."""

    threshold: float = 1.25
    current_decay: float = 0.25
    voltage_decay: float = 0.03
    tau_grad: float = 0.03
    scale_grad: float = 3.0


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as ``config.yaml`` in the run folder."""

    dataset: str = "synthgesture"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    model: str = "vgg"
    input_size: int = 32
    timesteps: int = 16
    channels: list[int] = field(default_factory=lambda: [8, 16])
    hidden: int = 64
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 3e-3
    true_rate: float = 0.2
    false_rate: float = 0.03
    seed: int = 0
    device: str = "cpu"
    cache_dir: str = ".cache/tensors"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (YAML/JSON/checkpoint friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "TrainConfig":
        """Build a config from plain data, rejecting unknown keys with the source named."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of options, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {unknown}; known: {sorted(names)}")
        data = dict(data)
        neuron = data.pop("neuron", {}) or {}
        try:
            return cls(neuron=NeuronConfig(**neuron), **data)
        except TypeError as e:
            raise ConfigError(f"{source}: bad neuron options: {e}") from None


def load_config(path: str | Path | None) -> TrainConfig:
    """Load a YAML config; ``None`` gives the defaults."""
    if path is None:
        return TrainConfig()
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return TrainConfig.from_dict(data, source=str(path))
