"""Training: event datasets, SLAYER models with SMA/AZO, the training loop."""

import contextlib
import io

# lava-dl prints a notice about an optional Prophesee toolbox to stdout when slayer is imported;
# importing it once here keeps every command's stdout (JSON included) clean.
with contextlib.redirect_stdout(io.StringIO()):
    import lava.lib.dl.slayer  # noqa: F401
