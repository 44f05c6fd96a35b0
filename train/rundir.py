"""The files of a training run folder, named in one place (plain pathlib: no torch here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from chipnet.errors import CheckpointError


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

    @property
    def last(self) -> Path:
        """The last epoch, with optimizer, scheduler and RNG state for ``--resume``."""
        return self.path / self.LAST

    @property
    def best(self) -> Path:
        """The selected epoch: what export and fine-tuning read."""
        return self.path / self.BEST

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_json(self) -> Path:
        return self.path / "metrics.json"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def layers(self) -> Path:
        return self.path / "layers.png"

    @property
    def model_net(self) -> Path:
        """The default NetX file of ``export/to_netx.py``."""
        return self.path / "model.net"

    @property
    def export_json(self) -> Path:
        return self.path / self.EXPORT_JSON

    def checkpoint(self, name: str = LAST) -> Path:
        """The checkpoint file ``name`` in this folder; :class:`CheckpointError` if it is not there."""
        path = self.path / name
        if not path.exists():
            raise CheckpointError(f"{path}: no checkpoint (is {self.path} a training run folder?)")
        return path
