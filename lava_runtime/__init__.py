"""Run exported networks as Lava processes (CPU simulator or Loihi 2), or on the emulator, and report on them.

Lava itself is loaded only by ``graph``, ``simulate``, ``float_units`` and ``processes/`` (through
:mod:`lava_runtime.lava_start`); everything else here reads files, emulates and reports without it.
"""
