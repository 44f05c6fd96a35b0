#!/usr/bin/env bash
# One-command setup: pick a supported Python (3.12, else 3.11, else 3.10, or the one PYTHON names: a path,
# a command or a version such as 3.10), create $VENV (.venv), install the project and the pinned stack of
# that Python (constraints.txt on 3.10, constraints-py312.txt on 3.11 and 3.12). Re-running on a ready
# machine only checks a stamp and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.setup-stamp"
SUPPORTED="3.12 3.11 3.10" # newest first: the order make setup tries them
WHY_NOT="lava-nc 0.10 / lava-dl 0.6 need Python >= 3.10 and numpy<2, which has no Python 3.13 wheels"

# "3.12.1" for a Python that runs, nothing otherwise (python2 prints its version too, so it can be refused).
pyversion() { [ -n "$1" ] && "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true; }
minor() { echo "${1%.*}"; }
is_supported() { case " $SUPPORTED " in *" $1 "*) [ -n "$1" ] ;; *) return 1 ;; esac; }
constraints_for() { if [ "$1" = 3.10 ]; then echo constraints.txt; else echo constraints-py312.txt; fi; }

find_python() { # $1: "3.12"; prints a python of that minor version
    local v=$1 c
    c=$(command -v "python$v" || true)
    if [ "$(minor "$(pyversion "$c")")" = "$v" ]; then echo "$c"; return; fi
    # pyenv shims refuse to run unless the version is selected; ask pyenv's folder directly.
    for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" /root/.pyenv/versions/"$v".*/bin/python"$v"; do
        if [ "$(minor "$(pyversion "$c")")" = "$v" ]; then echo "$c"; return; fi
    done
    if command -v uv >/dev/null 2>&1; then
        c=$(uv python find "$v" 2>/dev/null || true)
        if [ "$(minor "$(pyversion "$c")")" = "$v" ]; then echo "$c"; return; fi
    fi
    return 1
}

if [[ "${PYTHON:-}" =~ ^3\.[0-9]+$ ]]; then # PYTHON=3.10: a version, looked for as make setup looks for any
    if ! is_supported "$PYTHON"; then
        echo "setup: refusing PYTHON=$PYTHON: supported are 3.10, 3.11 and 3.12 ($WHY_NOT)" >&2
        exit 1
    fi
    if ! found=$(find_python "$PYTHON"); then
        echo "setup: PYTHON=$PYTHON: no Python $PYTHON found on PATH, under pyenv or through uv (e.g. pyenv install $PYTHON)" >&2
        exit 1
    fi
    PYTHON=$found
fi
if [ -n "${PYTHON:-}" ]; then
    ver=$(pyversion "$PYTHON")
    if [ -z "$ver" ]; then
        echo "setup: PYTHON=$PYTHON does not run; point it at a Python 3.10, 3.11 or 3.12" >&2
        exit 1
    fi
    if ! is_supported "$(minor "$ver")"; then
        echo "setup: refusing PYTHON=$PYTHON (Python $ver): supported are 3.10, 3.11 and 3.12 ($WHY_NOT)" >&2
        exit 1
    fi
    PY=$PYTHON
    why="named by PYTHON"
else
    PY=
    for v in $SUPPORTED; do
        if PY=$(find_python "$v"); then break; fi
        PY=
    done
    if [ -z "$PY" ]; then
        cat >&2 <<'MSG'
setup: no Python 3.12, 3.11 or 3.10 found (lava-nc 0.10 / lava-dl 0.6 run on these; 3.13 needs numpy 2).
Get one with any of:
  pyenv install 3.12.1           (then re-run make setup)
  uv python install 3.12
  apt-get install python3.12 python3.12-venv
or point PYTHON=/path/to/python3.12 (or 3.11, 3.10) at one.
MSG
        exit 1
    fi
    ver=$(pyversion "$PY")
    why="the newest supported Python found (3.12, then 3.11, then 3.10; PYTHON=... picks another)"
fi
CONSTRAINTS=$(constraints_for "$(minor "$ver")")
TORCH=$(sed -n 's/^torch==//p' "$CONSTRAINTS")

want="python $ver, $CONSTRAINTS, $(cat pyproject.toml "$CONSTRAINTS" scripts/patch_lava.py | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ "$(pyversion "$VENV/bin/python")" = "$ver" ]; then
    echo "setup: $VENV is up to date (Python $ver, $CONSTRAINTS; delete $STAMP to force a reinstall)"
    exit 0
fi

echo "setup: using $PY (Python $ver): $why"
echo "setup: pinned stack from $CONSTRAINTS (torch $TORCH) into $VENV"

# PyPI's Linux torch is a CUDA build: the venv takes about 6 GB, and pip needs room for the wheels it
# unpacks (and, unless PIP_NO_CACHE_DIR=1, another copy in its cache). Say so before pip fails halfway.
NEED_GB=${SETUP_NEED_GB:-11}
free_gb() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {printf "%d", $4 / 1048576}'; }
VENV_DIR=$(dirname "$VENV")
here_gb=$(free_gb "$VENV_DIR")
if [ -n "$here_gb" ] && [ "$here_gb" -lt "$NEED_GB" ]; then
    echo "setup: warning: $here_gb GB free on the disk of $VENV_DIR; installing torch $TORCH (a CUDA build on" \
        "Linux) into $VENV needs about $NEED_GB GB. Free some space; PIP_NO_CACHE_DIR=1 make setup keeps pip's" \
        "cache from holding a second copy of the wheels." >&2
fi

if [ "$(pyversion "$VENV/bin/python")" != "$ver" ]; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=23" 2>/dev/null || true
if ! "$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" -e ".[dev]"; then
    echo "setup: pip could not install the pinned stack into $VENV ($(free_gb "$VENV_DIR") GB free now on the disk" \
        "of $VENV_DIR); its message is above" >&2
    exit 1
fi
if [ "$(minor "$ver")" != 3.10 ]; then
    # lava-nc and lava-dl declare Python <3.11 and torch <2.4: install them without that metadata; their
    # runtime dependencies came with the project (pyproject's python_version >= '3.11' lines).
    "$VENV/bin/python" -m pip install --quiet --no-deps --ignore-requires-python -c "$CONSTRAINTS" lava-nc==0.10.0 lava-dl==0.6.0
fi
# lava-nc 0.10.0 does not import on Python >= 3.11 without this (docs/design.md, "lava-nc on Python 3.11 and 3.12").
"$VENV/bin/python" scripts/patch_lava.py
# The interop test extras (pyproject's [interop]) without their declared dependencies, which would
# pull torchaudio/tonic/numba and another torch or numpy; what they import is already installed.
"$VENV/bin/python" -m pip install --quiet --no-deps -c "$CONSTRAINTS" norse==1.1.0 snntorch==1.0.0 nirtorch==2.6 neurobench==2.3.0
TORCH=$TORCH "$VENV/bin/python" - <<'PY'
import os

import numpy, torch, lava, h5py, onnx
import norse.torch, snntorch.import_nir, nirtorch, neurobench.benchmarks  # noqa: F401  the interop extras
import train  # imports lava-dl quietly (it prints an optional-toolbox notice otherwise)
import lava.magma.compiler.var_model  # noqa: F401  what scripts/patch_lava.py fixes for Python >= 3.11
from lava.lib.dl import slayer, netx  # noqa: F401
want = os.environ["TORCH"]
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: the Lava stack needs numpy<2"
assert torch.__version__.split("+")[0] == want, f"torch {torch.__version__}: the constraints pin torch {want}"
print(f"setup: ok (torch {torch.__version__}, numpy {numpy.__version__})")
PY
echo "$want" > "$STAMP"
