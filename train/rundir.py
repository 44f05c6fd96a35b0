"""The files of a training run folder, named in one place (plain pathlib: no torch here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from chipnet.errors import CheckpointError


def _file(name: str, doc: str) -> property:
    """A read-only attribute: the path of ``name`` in the run folder."""
    return property(lambda self: self.path / name, doc=doc)


@dataclass(frozen=True)
class RunDir:
    """A run folder: ``RunDir("runs/x").best`` is its selected checkpoint."""

    path: Path
    # File names, for the places that take a name inside the folder (``load_checkpoint(run, RunDir.BEST)``).
    LAST: ClassVar[str] = "checkpoint.pt"
    BEST: ClassVar[str] = "best.pt"
    EXPORT_JSON: ClassVar[str] = "export.json"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    last = _file(LAST, "The last epoch, with optimizer, scheduler and RNG state for ``--resume``.")
    best = _file(BEST, "The selected epoch: what export and fine-tuning read.")
    config = _file("config.yaml", "The run's TrainConfig.")
    metrics_json = _file("metrics.json", "Per-epoch figures and the selection.")
    metrics_csv = _file("metrics.csv", "The per-epoch rows as CSV.")
    curves = _file("curves.png", "Loss and accuracy per epoch.")
    layers = _file("layers.png", "Firing rates and gradient norms per layer.")
    model_net = _file("model.net", "The default NetX file of ``export/to_netx.py``.")
    export_json = _file(EXPORT_JSON, "What export measured beside the file.")

    def checkpoint(self, name: str = LAST) -> Path:
        """The checkpoint file ``name`` in this folder; :class:`CheckpointError` if it is not there."""
        path = self.path / name
        if not path.exists():
            raise CheckpointError(f"{path}: no checkpoint (is {self.path} a training run folder?)")
        return path
