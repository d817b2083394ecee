#!/usr/bin/env bash
# Build the ccdm-gui bundle and its Linux packages from a clean environment.
#
#   bash packaging/build.sh            # -> dist/ccdm-gui/ (bundle), dist/*.tar.gz, dist/*.deb
#
# Options:
#   --reuse-venv   keep build/pkg/venv when its inputs (lock file, torch spec, Python)
#                  are unchanged; the project itself is always reinstalled. Used by
#                  tests/test_packaging.py; a release build omits it.
#   --no-packages  stop after the bundle (no .tar.gz, no .deb)
#   --relock       re-resolve packaging/requirements-build.txt from pyproject.toml
#
# Environment:
#   PYTHON            interpreter for the build venv (default: python3.11, else python3)
#   CCDM_TORCH        torch requirement installed first (default: torch==2.13.0+cpu)
#   CCDM_TORCH_INDEX  package index for it, e.g. a CUDA wheel index (see packaging/README.md)
#   CCDM_DEB_COMPRESS dpkg-deb compressor (default: xz at level 6)
#
# Linux only; Windows and macOS use packaging/windows and packaging/macos.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

REUSE=0
PACKAGES=1
RELOCK=0
for arg in "$@"; do
    case "$arg" in
        --reuse-venv) REUSE=1 ;;
        --no-packages) PACKAGES=0 ;;
        --relock) RELOCK=1 ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
CCDM_TORCH="${CCDM_TORCH:-torch==2.13.0+cpu}"
CCDM_TORCH_INDEX="${CCDM_TORCH_INDEX:-}"
LOCK=packaging/requirements-build.txt
BUILD=build/pkg
VENV=$BUILD/venv
STAMP=$VENV/.ccdm-inputs

log() { printf '\n== %s [%ss]\n' "$*" "$SECONDS"; }

torch_install() {
    # Installed before the lock so that a CUDA wheel from another index is the one
    # that stays: the lock does not name torch, and the project goes in --no-deps.
    if [ -n "$CCDM_TORCH_INDEX" ]; then
        "$VENV/bin/pip" install --index-url "$CCDM_TORCH_INDEX" "$CCDM_TORCH"
    else
        "$VENV/bin/pip" install "$CCDM_TORCH"
    fi
}

inputs="$(
    cat "$LOCK"
    echo "$CCDM_TORCH $CCDM_TORCH_INDEX"
    "$PYTHON" -VV
)"
inputs_hash="$(printf '%s' "$inputs" | sha256sum | cut -d' ' -f1)"

if [ "$RELOCK" = 1 ]; then
    log "re-resolving $LOCK"
    rm -rf "$BUILD/relock"
    "$PYTHON" -m venv "$BUILD/relock"
    VENV=$BUILD/relock torch_install
    deps="$("$PYTHON" - <<'EOF'
import tomllib
d = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(x for x in d if not x.replace(" ", "").startswith("torch")))
EOF
)"
    # shellcheck disable=SC2086
    "$BUILD/relock/bin/pip" install $deps "pyinstaller==6.22.*" setuptools wheel
    {
        sed -n '1,3p' "$LOCK"
        "$BUILD/relock/bin/pip" freeze --all | grep -v -i -E '^(torch|pip)=='
    } > "$LOCK.new"
    mv "$LOCK.new" "$LOCK"
    rm -rf "$BUILD/relock"
    log "wrote $LOCK"
    exit 0
fi

log "build environment ($VENV)"
if [ "$REUSE" = 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$inputs_hash" ]; then
    echo "reusing $VENV (inputs unchanged)"
else
    rm -rf "$VENV"
    mkdir -p "$BUILD"
    "$PYTHON" -m venv "$VENV"
    torch_install
    "$VENV/bin/pip" install -r "$LOCK"
    echo "$inputs_hash" > "$STAMP"
fi

log "installing ccdm-gui into the build environment"
# From a fresh copy: setuptools builds in the source folder, and its build/lib
# would keep modules deleted since the last build. --no-deps: everything is
# pinned above; a resolver here could only add what the lock leaves out.
rm -rf "$BUILD/src"
mkdir -p "$BUILD/src"
cp -r pyproject.toml ccdm_gui "$BUILD/src/"
[ -f README.md ] && cp README.md "$BUILD/src/"
find "$BUILD/src" -name __pycache__ -prune -exec rm -rf {} +
"$VENV/bin/pip" install --no-deps --no-build-isolation --force-reinstall --no-cache-dir \
    "$BUILD/src" >/dev/null
"$VENV/bin/pip" check
for unwanted in scipy matplotlib pandas torchvision PyQt5 PyQt6 PySide2; do
    if "$VENV/bin/pip" show -q "$unwanted" >/dev/null 2>&1; then
        echo "build.sh: $unwanted is in the build environment; it would be bundled" >&2
        exit 1
    fi
done
VERSION="$("$VENV/bin/python" -c 'import ccdm_gui; print(ccdm_gui.__version__)')"

log "PyInstaller bundle (ccdm-gui $VERSION)"
rm -rf dist/ccdm-gui
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath dist --workpath "$BUILD/pyinstaller" packaging/ccdm-gui.spec
du -sh dist/ccdm-gui

log "bundle smoke test"
dist/ccdm-gui/ccdm --version

if [ "$PACKAGES" = 1 ]; then
    ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"
    TARBALL="dist/ccdm-gui-$VERSION-linux-$(uname -m).tar.gz"
    log "tarball $TARBALL"
    tar -C dist -cf - ccdm-gui | gzip -6 > "$TARBALL.part"
    mv "$TARBALL.part" "$TARBALL"
    log "Debian package"
    bash packaging/linux/make_deb.sh dist/ccdm-gui "$VERSION" "$ARCH" dist
    ls -l dist/*.tar.gz dist/*.deb
fi
log "done"
