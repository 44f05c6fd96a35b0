#!/usr/bin/env bash
# One-command setup: find Python 3.10, create .venv, install the project and its pinned stack.
# Re-running on a ready machine only checks a stamp and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.setup-stamp"

is_py310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

find_python() {
    local c
    if [ -n "${PYTHON:-}" ] && is_py310 "$PYTHON"; then echo "$PYTHON"; return; fi
    c=$(command -v python3.10 || true)
    if is_py310 "$c"; then echo "$c"; return; fi
    # pyenv shims refuse to run unless the version is selected; ask pyenv's folder directly.
    for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 /root/.pyenv/versions/3.10*/bin/python3.10; do
        if is_py310 "$c"; then echo "$c"; return; fi
    done
    if command -v uv >/dev/null 2>&1; then
        c=$(uv python find 3.10 2>/dev/null || true)
        if is_py310 "$c"; then echo "$c"; return; fi
    fi
    return 1
}

want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && is_py310 "$VENV/bin/python"; then
    echo "setup: $VENV is up to date (delete $STAMP to force a reinstall)"
    exit 0
fi

if ! PY=$(find_python); then
    cat >&2 <<'MSG'
setup: no Python 3.10 found. lava-nc 0.10 and lava-dl 0.6 need Python >=3.10,<3.11.
Get one with any of:
  pyenv install 3.10.13          (then re-run make setup)
  uv python install 3.10
  apt-get install python3.10 python3.10-venv   (Debian/Ubuntu with deadsnakes)
or point PYTHON=/path/to/python3.10 at one.
MSG
    exit 1
fi
echo "setup: using $PY ($("$PY" --version 2>&1))"

if ! is_py310 "$VENV/bin/python"; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=23" 2>/dev/null || true
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
# The interop test extras (pyproject's [interop]) without their declared dependencies, which would
# pull torchaudio/tonic/numba and another torch or numpy; what they import is already installed.
"$VENV/bin/python" -m pip install --quiet --no-deps -c constraints.txt norse==1.1.0 snntorch==1.0.0 nirtorch==2.6 neurobench==2.3.0
"$VENV/bin/python" - <<'PY'
import numpy, torch, lava, h5py, onnx
import norse.torch, snntorch.import_nir, nirtorch, neurobench.benchmarks  # noqa: F401  the interop extras
import train  # imports lava-dl quietly (it prints an optional-toolbox notice otherwise)
from lava.lib.dl import slayer, netx  # noqa: F401
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: the Lava stack needs numpy<2"
assert torch.__version__.startswith("2.3.1"), f"torch {torch.__version__}: the Lava stack needs torch 2.3.1"
print(f"setup: ok (torch {torch.__version__}, numpy {numpy.__version__})")
PY
echo "$want" > "$STAMP"
