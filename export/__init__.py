"""Export: turn a trained run into what the chip runs (NetX HDF5)."""

import train  # noqa: F401,E402  (imports lava-dl quietly before anything else does)
