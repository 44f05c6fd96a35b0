"""Training configuration: one dataclass, loaded from YAML, overridden from the command line."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chipnet.errors import ConfigError
from chipnet.events import BINNINGS, ENCODINGS

CONFIG_DIR = Path(__file__).parent / "configs"

# The closed choices, declared once: the modules that implement them import these, and a config is
# checked against them when it is loaded (before any dataset is binned). Plain strings, not Enum
# members, so that config.yaml, checkpoints and JSON stay plain data.
NORMS = ("none", "mean-only", "weight-scale", "batch")  # train/models/norm.py
POOLS = ("stride", "max")  # train/models/pool.py
READOUTS = ("spikes", "voltage")  # train/models/readout.py
LOSSES = ("spike-rate", "ce", "mse")
SCHEDULERS = ("none", "cosine")  # train/loop.py: lr_factor
FOLDED = ("none", "per-timestep", "static")  # deploy-aware fine-tuning (train/finetune.py)
SMA_BLOCKS = ("linear", "spiking")  # train/models/sma.py, sma_spiking.py
MA_ATTENTIONS = ("tca", "tcsa")  # train/models/ma.py
CHOICES: dict[str, tuple[str, ...]] = {
    "norm": NORMS,
    "pool": POOLS,
    "readout": READOUTS,
    "loss": LOSSES,
    "scheduler": SCHEDULERS,
    "binning": BINNINGS,
    "encoding": ENCODINGS,
    "folded": FOLDED,
    "sma_block": SMA_BLOCKS,
    "ma_attention": MA_ATTENTIONS,
}


def check_choices(cfg: "TrainConfig", source: str = "") -> None:
    """Raise :class:`ConfigError` for the first option outside its closed choices (:data:`CHOICES`)."""
    where = f"{source}: " if source else ""
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{where}{name} must be one of {allowed}, got {getattr(cfg, name)!r}")


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
    hidden: int | list[int] = 64  # one dense layer, or a list of widths (the paper's VGG8 has two)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 3e-3
    true_rate: float = 0.2
    false_rate: float = 0.03
    seed: int = 0
    device: str = "cpu"
    cache_dir: str = ".cache/tensors"
    # Data (train/data): folder holding on-disk datasets, denoise filter in µs (0 = off),
    # train-time augmentation ({max_shift, hflip, drop}; empty = none), DataLoader workers for binning.
    data_root: str = "data"
    denoise_us: int = 0
    # Frames: of equal time or equal event count ("time" | "count"), holding binary spikes or event
    # counts clipped to 255 ("spikes" | "counts"; counts reach the first synapse as graded messages).
    binning: str = "time"
    encoding: str = "spikes"
    augment: dict[str, Any] = field(default_factory=dict)
    workers: int = 0
    # Validation: the share of the training split held out (seeded by ``seed``; DVS Gesture holds
    # out whole users) on which best.pt is chosen; 0 = no validation, best.pt is the last epoch.
    val_fraction: float = 0.1
    # Normalisation of every conv layer's current ("none", "mean-only", "weight-scale": lava-dl's
    # Loihi-compatible MeanOnlyBatchNorm / WgtScaleBatchNorm) and spike dropout on the hidden dense layers.
    norm: str = "none"
    dropout: float = 0.0
    # Downsampling: "stride" (stride-2 convs) or "max" (stride-1 convs, each followed by a 2×2 max pool
    # of its spikes, deployed as a depthwise conv layer: train/models/pool.py).
    pool: str = "stride"
    # A trained bias on every neuron without a norm (hidden and output dense layers; NetX's neuron bias).
    bias: bool = False
    # Output layer and loss (train/models/readout.py): "spikes" (CUBA; loss "spike-rate" or "ce" on
    # spike counts) or "voltage" (non-spiking integrator read at the end of the window; "ce" or "mse").
    readout: str = "spikes"
    loss: str = "spike-rate"
    # Optimiser and schedule: AdamW (weight_decay 0 is plain Adam); "cosine" anneals lr to 0 over the
    # epochs after ``warmup_epochs`` of linear warm-up; ``amp``: mixed precision (CUDA only).
    weight_decay: float = 0.0
    scheduler: str = "none"
    warmup_epochs: int = 0
    amp: bool = False
    # SMA blocks (sma-vgg, sma-azo-vgg): kernel sizes of the N branches, which conv layers
    # (0-based; null = the paper's S3: first half, not the encoding layer) and the SE reductions.
    sma_kernel_sizes: list[int] = field(default_factory=lambda: [1, 3, 5, 7])
    sma_layers: list[int] | None = None
    sma_temporal_reduction: int = 4
    sma_channel_reduction: int = 4
    # "linear": branches read the layer's input and stay linear (folds into one conv + gain);
    # "spiking": the authors' block, a leading 3×3 conv, spiking branches and attention on their spikes
    # (deploys as a conv layer Cin→N·C and a grouped 1×1 conv N·C→C with the gain; train/models/sma_spiking.py).
    sma_block: str = "linear"
    # AZO (sma-azo-vgg): timesteps and channels zoned out; null = the paper's T // 4 and C // 10.
    azo_delta_t: int | None = None
    azo_delta_c: int | None = None
    # MA blocks (ma-vgg, MA-SNN): which conv layers (0-based; null = SMA's default placement), the
    # attention ("tca": temporal × channel, exportable; "tcsa": also spatial, training only) and the
    # squeeze-excitation reduction of its temporal and channel MLPs.
    ma_layers: list[int] | None = None
    ma_attention: str = "tca"
    ma_reduction: int = 4
    # A run of the deployable form (deploy-aware fine-tuning): SMA blocks folded "per-timestep" or "static".
    folded: str = "none"

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
        if not isinstance(neuron, dict):
            raise ConfigError(f"{source}: 'neuron' must be a mapping, got {type(neuron).__name__}")
        try:
            cfg = cls(neuron=NeuronConfig(**neuron), **data)
        except TypeError as e:
            raise ConfigError(f"{source}: bad neuron options: {e}") from None
        _check_types(cfg, cls(), source)
        _check_types(cfg.neuron, NeuronConfig(), source, prefix="neuron.")
        check_choices(cfg, source)
        return cfg


def _check_types(obj: Any, default: Any, source: str, prefix: str = "") -> None:
    """Each option must have its default's type (ints pass for floats) and numbers must be finite."""
    for f in dataclasses.fields(obj):
        value, ref = getattr(obj, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(ref):
            continue
        if f.name in _OPTIONAL:
            if value is None:  # null: the model works out the paper's default
                continue
            ref = _OPTIONAL[f.name]
        if f.name in _OR_LIST and isinstance(value, list):
            ref = [ref]
        want = (int, float) if isinstance(ref, float) else type(ref)
        ok = isinstance(value, want) and not (isinstance(value, bool) and not isinstance(ref, bool))
        if ok and isinstance(value, list) and ref:
            ok = all(isinstance(v, type(ref[0])) and not isinstance(v, bool) and v > 0 for v in value)
        if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = math.isfinite(value) and (value > 0 if f.name in _POSITIVE else value >= 0)
            ok = ok and not (f.name in _BELOW_ONE and value >= 1)
        if not ok:
            raise ConfigError(
                f"{source}: option {prefix}{f.name} = {value!r} is invalid; expected a {type(ref).__name__} like {ref!r}"
            )


_OPTIONAL = {"sma_layers": [1], "ma_layers": [1], "azo_delta_t": 1, "azo_delta_c": 1}  # null, or a value like this
_OR_LIST = {"hidden"}  # an int, or a list of such ints
_BELOW_ONE = {"val_fraction", "dropout"}  # fractions that must stay below 1
_POSITIVE = {
    "input_size",
    "timesteps",
    "channels",
    "hidden",
    "epochs",
    "batch_size",
    "lr",
    "threshold",
    "true_rate",
    "ma_reduction",
}


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
