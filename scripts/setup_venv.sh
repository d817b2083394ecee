#!/usr/bin/env bash
# Create (or reuse) .venv in the repository root with everything ccdm-gui needs.
# torch is installed first, pinned to the CPU build, so that nothing later pulls
# a multi-GB CUDA build. A GPU user installs a CUDA torch into .venv first (README).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.ccdm-installed"
# The install builds the compiled fold too: a change to its sources needs a new install.
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT"/ccdm_gui/core/machines/foldc* \
    "$ROOT"/ccdm_gui/core/machines/wsum_body.h | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        "$VENV/bin/pip" install --disable-pip-version-check -q "torch==2.13.0"
    fi
    "$VENV/bin/pip" install --disable-pip-version-check -q -e "$ROOT[test,diffusers]"
    echo "$WANT" > "$STAMP"
fi
