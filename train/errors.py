"""Exception classes shared by the pipeline; each message names the file or layer at fault."""


class DatasetError(Exception):
    """A dataset is missing, incomplete or malformed."""


class ConfigError(Exception):
    """A configuration file or option is invalid."""


class CheckpointError(Exception):
    """A run folder or checkpoint is missing or unreadable."""
