"""Training configuration: one dataclass, loaded from YAML, overridden from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
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
SMA_ATTENTIONS = ("se", "static")  # train/models/sma.py: MultiscaleSE, StaticScales
MA_ATTENTIONS = ("tca", "tcsa")  # train/models/ma.py
CHOICES: dict[str, tuple[str, ...]] = {
    "norm": NORMS,
    "pool": POOLS,
    "readout.kind": READOUTS,
    "readout.loss": LOSSES,
    "optim.scheduler": SCHEDULERS,
    "binning": BINNINGS,
    "encoding": ENCODINGS,
    "folded": FOLDED,
    "sma.block": SMA_BLOCKS,
    "sma.attention": SMA_ATTENTIONS,
    "ma.attention": MA_ATTENTIONS,
}


def check_choices(cfg: "TrainConfig", source: str = "") -> None:
    """Raise :class:`ConfigError` for the first option outside its closed choices (:data:`CHOICES`)."""
    where = f"{source}: " if source else ""
    for path, allowed in CHOICES.items():
        section, _, key = path.rpartition(".")
        value = getattr(getattr(cfg, section), key) if section else getattr(cfg, key)
        if value not in allowed:
            name = cfg.option_name(section, key) if section else key
            raise ConfigError(f"{where}{name} must be one of {allowed}, got {value!r}")


@dataclass
class NeuronConfig:
    """SLAYER CUBA neuron parameters (lava-dl's ``neuron_params``)."""

    threshold: float = 1.25
    current_decay: float = 0.25
    voltage_decay: float = 0.03
    tau_grad: float = 0.03
    scale_grad: float = 3.0


@dataclass
class ReadoutConfig:
    """Output layer and loss (train/models/readout.py)."""

    # "spikes" (CUBA; loss "spike-rate" or "ce" on spike counts) or "voltage" (a non-spiking integrator
    # read at the end of the window; "ce" or "mse").
    kind: str = "spikes"
    loss: str = "spike-rate"
    true_rate: float = 0.2  # spike-rate loss: target rate of the true class's neuron
    false_rate: float = 0.03  # ... and of the others


@dataclass
class OptimConfig:
    """AdamW (weight_decay 0 is plain Adam); "cosine" anneals lr to 0 over the epochs after
    ``warmup_epochs`` of linear warm-up; ``amp``: mixed precision (CUDA only)."""

    lr: float = 3e-3
    weight_decay: float = 0.0
    scheduler: str = "none"
    warmup_epochs: int = 0
    amp: bool = False


@dataclass
class SMAConfig:
    """SMA blocks (sma-vgg, sma-azo-vgg)."""

    kernel_sizes: list[int] = field(default_factory=lambda: [1, 3, 5, 7])  # the N branches
    layers: list[int] | None = None  # conv layers, 0-based; null = the paper's S3 (first half, not the encoder)
    temporal_reduction: int = 4
    channel_reduction: int = 4
    # "linear": branches read the layer's input and stay linear (folds into one conv + gain);
    # "spiking": the authors' block, a leading 3×3 conv, spiking branches and attention on their spikes
    # (deploys as a conv layer Cin→N·C and a grouped 1×1 conv N·C→C with the gain; train/models/sma_spiking.py).
    block: str = "linear"
    # "se": the paper's attention, computed from each sample; "static": learned branch weights that do not
    # depend on the input, the same deployed layers without the attention (a capacity-matched control).
    attention: str = "se"


@dataclass
class AZOConfig:
    """AZO (sma-azo-vgg): timesteps and channels zoned out; null = the paper's T // 4 and C // 10."""

    delta_t: int | None = None
    delta_c: int | None = None


@dataclass
class MAConfig:
    """MA blocks (ma-vgg, MA-SNN)."""

    layers: list[int] | None = None  # conv layers, 0-based; null = SMA's default placement
    # "tca": temporal × channel, exportable; "tcsa": also spatial, training only.
    attention: str = "tca"
    reduction: int = 4  # squeeze-excitation reduction of the temporal and channel MLPs


SECTIONS: dict[str, type] = {
    "neuron": NeuronConfig,
    "readout": ReadoutConfig,
    "optim": OptimConfig,
    "sma": SMAConfig,
    "azo": AZOConfig,
    "ma": MAConfig,
}
# Flat names of earlier releases, accepted with a deprecation line for one release: flat → (section, key).
FLAT: dict[str, tuple[str, str]] = {
    "loss": ("readout", "loss"),
    "true_rate": ("readout", "true_rate"),
    "false_rate": ("readout", "false_rate"),
    **{k: ("optim", k) for k in ("lr", "weight_decay", "scheduler", "warmup_epochs", "amp")},
    **{f"sma_{k}": ("sma", k) for k in ("kernel_sizes", "layers", "temporal_reduction", "channel_reduction", "block")},
    **{f"azo_{k}": ("azo", k) for k in ("delta_t", "delta_c")},
    **{f"ma_{k}": ("ma", k) for k in ("layers", "attention", "reduction")},
}
_WARNED: set[tuple[str, tuple[str, ...]]] = set()


@dataclass(init=False)
class TrainConfig:
    """Everything a training run depends on; saved as ``config.yaml`` in the run folder.

    Options of one part of the pipeline are grouped in sections (``readout``, ``optim``, ``sma``,
    ``azo``, ``ma``, ``neuron``), given as their dataclass or as a mapping. The flat names of earlier
    releases (``lr``, ``sma_layers``, ``readout: voltage``, ...) are still accepted, with one
    deprecation line on stderr.
    """

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
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sma: SMAConfig = field(default_factory=SMAConfig)
    azo: AZOConfig = field(default_factory=AZOConfig)
    ma: MAConfig = field(default_factory=MAConfig)
    # A run of the deployable form (deploy-aware fine-tuning): SMA blocks folded "per-timestep" or "static".
    folded: str = "none"

    def __init__(self, source: str = "", **options: Any) -> None:
        options, self._flat = _nest(options, source)
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}")
        for f in dataclasses.fields(self):
            if f.name in options:
                value = options[f.name]
                if f.name in SECTIONS and isinstance(value, dict):
                    value = SECTIONS[f.name](**value)
            else:
                value = f.default_factory() if f.default is dataclasses.MISSING else f.default
            setattr(self, f.name, value)

    def option_name(self, section: str, key: str) -> str:
        """How the user wrote an option (its flat name where they used one), for messages."""
        return self._flat.get(f"{section}.{key}", f"{section}.{key}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (YAML/JSON/checkpoint friendly), sections as nested mappings."""
        return dataclasses.asdict(self)

    def leaves(self) -> dict[str, Any]:
        """Every option by its full name (``optim.lr``), sorted: what to compare two configs by."""
        out = {}
        for name, value in self.to_dict().items():
            items = value.items() if name in SECTIONS else [(None, value)]
            out.update({f"{name}.{key}" if key else name: v for key, v in items})
        return dict(sorted(out.items()))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "TrainConfig":
        """Build a config from plain data, rejecting unknown keys with the source named."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of options, got {type(data).__name__}")
        nested, flat = _nest(dict(data), source)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(nested) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {unknown}; known: {sorted(names)}")
        for name, section in SECTIONS.items():
            value = nested.get(name, {}) or {}  # null: the section's defaults
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{name}' must be a mapping, got {type(value).__name__}")
            nested[name] = value
            keys = {f.name for f in dataclasses.fields(section)}
            bad = sorted(set(value) - keys)
            if bad:
                raise ConfigError(f"{source}: unknown {name} option(s) {bad}; known: {sorted(keys)}")
        try:
            cfg = cls(**nested)
        except TypeError as e:
            raise ConfigError(f"{source}: bad options: {e}") from None
        cfg._flat = flat
        default = cls()
        _check_types(cfg, default, source)
        for name in SECTIONS:
            _check_types(getattr(cfg, name), getattr(default, name), source, prefix=f"{name}.", flat=flat)
        check_choices(cfg, source)
        return cfg


def _set(data: dict[str, Any], section: str, key: str, value: Any, source: str = "") -> None:
    """``data[section][key] = value``, with the section (a mapping or its dataclass) copied, not changed."""
    part = data.get(section) or {}
    if not isinstance(part, dict) and not dataclasses.is_dataclass(part):
        raise ConfigError(f"{source or '<options>'}: '{section}' must be a mapping, got {type(part).__name__}")
    part = dataclasses.asdict(part) if dataclasses.is_dataclass(part) else dict(part)
    data[section] = {**part, key: value}


def _nest(options: dict[str, Any], source: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """``options`` with flat names of earlier releases moved into their sections; also which were flat."""
    flat = {k: v for k, v in options.items() if k in FLAT or (k == "readout" and isinstance(v, str))}
    if not flat:
        return options, {}
    nested = {k: v for k, v in options.items() if k not in flat}
    given: dict[str, str] = {}
    for old, value in flat.items():
        section, key = FLAT.get(old, ("readout", "kind"))
        _set(nested, section, key, value, source)
        given[f"{section}.{key}"] = old
    seen = (source, tuple(sorted(flat)))
    if seen not in _WARNED:
        _WARNED.add(seen)
        where = f"{source}: " if source else ""
        moved = ", ".join(f"{old} → {new}" for new, old in given.items())
        print(f"{where}deprecated flat option names (still read for this release): {moved}", file=sys.stderr)
    return nested, given


def _check_types(obj: Any, default: Any, source: str, prefix: str = "", flat: dict[str, str] | None = None) -> None:
    """Each option must have its default's type (ints pass for floats) and numbers must be finite."""
    for f in dataclasses.fields(obj):
        value, ref = getattr(obj, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(ref):
            continue
        name = prefix + f.name
        if name in _OPTIONAL:
            if value is None:  # null: the model works out the paper's default
                continue
            ref = _OPTIONAL[name]
        if name in _OR_LIST and isinstance(value, list):
            ref = [ref]
        want = (int, float) if isinstance(ref, float) else type(ref)
        ok = isinstance(value, want) and not (isinstance(value, bool) and not isinstance(ref, bool))
        if ok and isinstance(value, list) and ref:
            ok = all(isinstance(v, type(ref[0])) and not isinstance(v, bool) and v > 0 for v in value)
        if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = math.isfinite(value) and (value > 0 if name in _POSITIVE else value >= 0)
            ok = ok and not (name in _BELOW_ONE and value >= 1)
        if not ok:
            shown = (flat or {}).get(name, name)
            raise ConfigError(
                f"{source}: option {shown} = {value!r} is invalid; expected a {type(ref).__name__} like {ref!r}"
            )


_OPTIONAL = {"sma.layers": [1], "ma.layers": [1], "azo.delta_t": 1, "azo.delta_c": 1}  # null, or a value like this
_OR_LIST = {"hidden"}  # an int, or a list of such ints
_BELOW_ONE = {"val_fraction", "dropout"}  # fractions that must stay below 1
_POSITIVE = {
    "input_size",
    "timesteps",
    "channels",
    "hidden",
    "epochs",
    "batch_size",
    "optim.lr",
    "neuron.threshold",
    "readout.true_rate",
    "ma.reduction",
}


def option_fields() -> list[tuple[str, Any]]:
    """Every option's name (``section.key`` inside a section) and its default, in the dataclass's order."""
    default = TrainConfig()
    out = []
    for f in dataclasses.fields(TrainConfig):
        value = getattr(default, f.name)
        if f.name in SECTIONS:
            out += [(f"{f.name}.{g.name}", getattr(value, g.name)) for g in dataclasses.fields(value)]
        else:
            out.append((f.name, value))
    return out


def add_option_flags(parser: argparse.ArgumentParser, help: dict[str, str]) -> None:
    """One ``--name`` flag per option of :class:`TrainConfig` (``--sma.block``, ``--batch-size``, ...).

    Values are read as YAML (``--sma.layers "[1, 2]"``) and checked with the rest of the config;
    ``help`` gives the flags people use most their own text.
    """
    group = parser.add_argument_group("options (override the config file; YAML values; sections as section.key)")
    for name, default in option_fields():
        text = help.get(name, f"default: {default!r} (train/config.py)")
        kind = str if isinstance(default, str) else _flag_value  # a name or path stays text
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None, help=text)


def _flag_value(text: str) -> Any:
    """A flag's value: a number where it reads as one (YAML would keep ``1e-3`` a string), else YAML."""
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"not a YAML value: {text!r} ({e.problem})") from None


def flag_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options given as flags (those :func:`add_option_flags` added), by their config names."""
    names = {name for name, _ in option_fields()}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def with_options(cfg: TrainConfig, options: dict[str, Any], source: str = "<options>") -> TrainConfig:
    """A copy of ``cfg`` with ``options`` applied and checked as a loaded config is.

    ``options`` holds top-level options, sections as mappings (only the keys given change), dotted
    names (``"sma.block": "spiking"``) or the flat names of earlier releases.
    """
    data = cfg.to_dict()
    for name, value in options.items():
        section, _, key = name.rpartition(".")
        if section:
            _set(data, section, key, value, source)
        elif name in SECTIONS and isinstance(value, dict):
            for key, v in value.items():
                _set(data, name, key, v, source)
        else:
            data[name] = value
    return TrainConfig.from_dict(data, source=source)


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
