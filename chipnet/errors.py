"""Exception classes shared by the pipeline; each message names the file or layer at fault.

Every error a user can cause derives from :class:`SmaLavaError`; the commands
(:func:`chipnet.cli.run_cli`) print it as ``error: ...`` and exit with status 2. Errors of one
stage only (``ConstraintError``, ``EnergyModelError``, ``LavaRunError``, ...) live beside the code
that raises them and derive from these.
"""


class SmaLavaError(Exception):
    """A user-facing error: bad input, options, files or runs (never a bug in the pipeline)."""


class DatasetError(SmaLavaError):
    """A dataset is missing, incomplete or malformed."""


class ConfigError(SmaLavaError):
    """A configuration file or option is invalid."""


class CheckpointError(SmaLavaError):
    """A run folder or checkpoint is missing or unreadable."""


class FoldError(SmaLavaError):
    """A trained attention layer has no exact deployable (folded) form, e.g. MA's spatial attention."""


class RuntimeConfigError(SmaLavaError):
    """The network file, backend or options cannot be run as asked."""


class ExportError(SmaLavaError):
    """The model cannot be exported as asked; the message names the layer and the limit."""
