"""Errors of the runtime; messages name the file, layer or option at fault."""


class RuntimeConfigError(Exception):
    """The network file, backend or options cannot be run as asked."""
