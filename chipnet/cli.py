"""One way out of every command: ``sys.exit(run_cli(main))``.

A :class:`~chipnet.errors.SmaLavaError` becomes ``error: <message>`` on stderr and exit status 2;
Ctrl-C or SIGTERM (anywhere, not only mid-run) becomes one ``interrupted`` line and status 130,
after the cleanup on the way out has run (``finally`` blocks, Lava's stop). Code that needs its
own SIGTERM handling for a while (``lava_runtime.simulate.stop_on_signals``) installs it and
restores this one afterwards.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Callable, Sequence

from chipnet.errors import SmaLavaError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_cli(
    main: Callable[[list[str] | None], int], argv: list[str] | None = None, interrupted: str = "interrupted"
) -> int:
    """``main(argv)``'s exit status, with user errors and interruptions turned into 2 and 130."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return main(argv)
    except SmaLavaError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# How attention reaches the chip: a gain per timestep, or its time mean folded into the weights.
FOLD_MODES = ("per-timestep", "static")


class Deprecated(argparse.Action):
    """An old option name that still works for one release and says which name replaces it (its ``metavar``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: str | None = None) -> None:
        print(f"{parser.prog}: {option} is deprecated, use {self.metavar}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_fold_option(parser: argparse.ArgumentParser, help: str, choices: Sequence[str] = FOLD_MODES) -> None:
    """``--fold per-timestep|static`` (default per-timestep), with ``--sma`` accepted as a deprecated alias."""
    parser.add_argument("--fold", default=choices[0], choices=choices, help=f"{help} (default: {choices[0]})")
    parser.add_argument(
        "--sma", dest="fold", choices=choices, action=Deprecated, metavar="--fold", help=argparse.SUPPRESS
    )
