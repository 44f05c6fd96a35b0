"""Run exported networks as Lava processes (CPU simulator or Loihi 2) and report on them."""
