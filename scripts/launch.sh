#!/usr/bin/env bash
# Set up .venv if needed, then open the window on the shipped model and MNIST data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
exec "$ROOT/.venv/bin/python" -m ccdm_gui gui "$@"
