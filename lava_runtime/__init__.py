"""Run exported networks as Lava processes (CPU simulator or Loihi 2) and report on them."""

import train  # noqa: F401,E402  (imports lava-dl quietly before anything else does)
