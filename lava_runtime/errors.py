"""Errors of the runtime; messages name the file, layer or option at fault."""

from train.errors import SmaLavaError


class RuntimeConfigError(SmaLavaError):
    """The network file, backend or options cannot be run as asked."""
