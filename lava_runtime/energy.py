"""Energy models: per-operation constants (each with its source) that turn counts into joules.

An energy model is a YAML file (see ``energy_models/loihi1_davies2018.yaml``)::

    name: some-name
    constants:
      synop_j: {value: 23.6e-12, source: "paper, table"}
      ...

with every constant of :data:`REQUIRED` present, a finite non-negative number of joules and a
non-empty source. Anything else is an :class:`EnergyModelError` naming the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chipnet.errors import RuntimeConfigError

DEFAULT_MODEL = Path(__file__).with_name("energy_models") / "loihi1_davies2018.yaml"

REQUIRED = {
    "synop_j": "energy of one synaptic operation (one spike over one synapse)",
    "neuron_update_j": "energy of one neuron advanced by one timestep",
    "spike_j": "energy of one output spike routed to the next layer",
    "ac_j": "energy of one accumulate (the SNN side of the ANN comparison)",
    "mac_j": "energy of one multiply-accumulate (the ANN side of the comparison)",
}


class EnergyModelError(RuntimeConfigError):
    """An energy model file is missing, malformed or lacks a constant."""


@dataclass(frozen=True)
class Constant:
    """One energy per operation in joules and where the number comes from."""

    value: float
    source: str


@dataclass(frozen=True)
class EnergyModel:
    """A named set of per-operation energies (keys of :data:`REQUIRED`)."""

    name: str
    path: str
    constants: dict[str, Constant]

    def __getitem__(self, key: str) -> float:
        return self.constants[key].value

    def as_dict(self) -> dict[str, Any]:
        """The model as the report stores it: name, file, and every constant with its source."""
        return {
            "name": self.name,
            "file": self.path,
            "constants": {k: {"value": c.value, "source": c.source} for k, c in self.constants.items()},
        }


def _constant(path: Path, key: str, entry: Any) -> Constant:
    """One validated ``{value, source}`` entry."""
    if not isinstance(entry, dict):
        raise EnergyModelError(f"{path}: constants.{key} must be a mapping with 'value' and 'source'")
    value, source = entry.get("value"), entry.get("source")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EnergyModelError(f"{path}: constants.{key}.value must be a number of joules, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise EnergyModelError(f"{path}: constants.{key}.value must be finite and non-negative, got {value!r}")
    if not isinstance(source, str) or not source.strip():
        raise EnergyModelError(f"{path}: constants.{key}.source must name where the value comes from")
    return Constant(float(value), source.strip())


def load_energy_model(path: str | Path | None = None) -> EnergyModel:
    """Read and check an energy model YAML (the packaged Loihi model when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnergyModelError(f"{path}: energy model file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EnergyModelError(f"{path}: cannot read the energy model ({e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise EnergyModelError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise EnergyModelError(f"{path}: expected a mapping with 'name' and 'constants'")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EnergyModelError(f"{path}: 'name' must be a non-empty string")
    constants = data.get("constants")
    if not isinstance(constants, dict):
        raise EnergyModelError(f"{path}: 'constants' must be a mapping of constant name to value and source")
    missing = [k for k in REQUIRED if k not in constants]
    if missing:
        raise EnergyModelError(f"{path}: missing constant {missing[0]} ({REQUIRED[missing[0]]})")
    checked = {str(k): _constant(path, str(k), v) for k, v in constants.items()}
    return EnergyModel(name.strip(), str(path), checked)


def layer_energy(model: EnergyModel, synops: int, neuron_updates: int, spikes: int) -> dict[str, float]:
    """Joules of one layer by kind of operation."""
    return {
        "synops": synops * model["synop_j"],
        "neuron_updates": neuron_updates * model["neuron_update_j"],
        "spikes": spikes * model["spike_j"],
    }


def ann_comparison(
    model: EnergyModel, macs_per_inference: int, acs_per_inference: float, snn_macs_per_inference: float = 0.0
) -> dict[str, Any]:
    """The 45 nm comparison: the same network as an ANN (one MAC per synapse) vs the SNN's operations.

    A binary spike over a synapse is an accumulate; a graded (sigma-delta) message is a
    multiply-accumulate (``snn_macs_per_inference``).
    """
    ann = macs_per_inference * model["mac_j"]
    snn = acs_per_inference * model["ac_j"] + snn_macs_per_inference * model["mac_j"]
    return {
        "basis": "per inference; the ANN does one timestep-free forward pass, one MAC per synapse",
        "macs": int(macs_per_inference),
        "energy_j": ann,
        "snn_acs": float(acs_per_inference),
        "snn_macs": float(snn_macs_per_inference),
        "snn_energy_j": snn,
        "ratio": ann / snn if snn > 0 else None,
    }
