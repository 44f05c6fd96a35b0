"""Import this before Lava's runtime: it lets Lava set multiprocessing's start method.

Lava's runtime calls ``multiprocessing.set_start_method("fork")`` when it is first imported, and
Python refuses that once anything has fixed the start method, which any multiprocessing lock
does: tqdm makes one for its first progress bar. So binning a dataset (or training) before the
first Lava import in a process made the import fail with "context has already been set". Where
Lava's module is not loaded yet, the choice is reset so that Lava's own call goes through (Lava
needs "fork" anyway; its call sets it).

It also imports lava-dl's NetX with stdout captured: lava-dl prints a notice about an optional
Prophesee toolbox when SLAYER (which NetX imports) is first loaded, and every command's stdout
(JSON included) must stay clean.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import sys

_LAVA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"

if _LAVA_MP not in sys.modules and multiprocessing.get_start_method(allow_none=True) is not None:
    multiprocessing.set_start_method(None, force=True)

with contextlib.redirect_stdout(io.StringIO()):
    import lava.lib.dl.netx  # noqa: F401
