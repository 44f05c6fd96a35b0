"""Progress bars for a person at a terminal, and nothing for a log file.

tqdm redraws its bar with carriage returns; in a log or CI output every redraw is kept, and a few
epochs leave hundreds of bar fragments. Bars are drawn only when stderr is a terminal (tqdm's
``disable=None``); lines written with ``tqdm.write`` (one per epoch in training) reach logs either way.
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, drawn only when ``enabled`` and stderr is a terminal."""
    return tqdm(iterable, disable=None if enabled else True, **kwargs)
