#!/usr/bin/env bash
# Build the ccdm-gui bundle and its platform packages from a clean environment.
#
#   bash packaging/build.sh
#
# Linux:   dist/ccdm-gui/ (bundle), dist/ccdm-gui-VERSION-linux-ARCH.tar.gz, dist/*.deb
# macOS:   dist/ccdm-gui.app and dist/ccdm-gui-VERSION-macos-ARCH.dmg (packaging/macos)
# Windows: (Git Bash) dist/ccdm-gui/ and, with Inno Setup's iscc on the PATH,
#          dist/ccdm-gui-VERSION-windows-x64-setup.exe (packaging/windows)
# Only the Linux path is exercised by this project's own tests; the macOS and
# Windows paths run on their CI runners (.github/workflows/packages.yml).
#
# Options:
#   --reuse-venv   keep build/pkg/venv when its inputs (lock file, torch spec, Python)
#                  are unchanged; the project itself is always reinstalled and the
#                  bundle always rebuilt. Used by tests/test_packaging.py; a release
#                  build omits it.
#   --no-packages  stop after the bundle
#   --relock       re-resolve packaging/requirements-build.txt from pyproject.toml
#
# Environment:
#   PYTHON            interpreter for the build venv (default: python3.11, else python3)
#   CCDM_TORCH        torch requirement installed first (default: torch==2.13.0+cpu)
#   CCDM_TORCH_INDEX  package index for it, e.g. a CUDA wheel index (packaging/README.md)
#   CCDM_DEB_COMPRESS dpkg-deb compressor: zstd (default), xz or gzip
#   CCDM_BUILD_VENV   where the build venv lives (default build/pkg/venv); with
#                     --reuse-venv, a folder outside the clone survives fresh checkouts
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
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

case "$(uname -s)" in
    Linux) OS=linux ;;
    Darwin) OS=macos ;;
    MINGW* | MSYS* | CYGWIN*) OS=windows ;;
    *) echo "build.sh: unsupported system $(uname -s)" >&2; exit 2 ;;
esac
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3 || command -v python)}"
CCDM_TORCH="${CCDM_TORCH:-torch==2.13.0+cpu}"
CCDM_TORCH_INDEX="${CCDM_TORCH_INDEX:-}"
LOCK=packaging/requirements-build.txt
BUILD=build/pkg
VENV="${CCDM_BUILD_VENV:-$BUILD/venv}"
STAMP=$VENV/.ccdm-inputs
EXE=""
[ "$OS" = windows ] && EXE=.exe

log() { printf '\n== %s [%ss]\n' "$*" "$SECONDS"; }
# A venv keeps its programs in bin/, or Scripts/ on Windows.
vbin() { if [ -d "$1/Scripts" ]; then echo "$1/Scripts"; else echo "$1/bin"; fi; }

torch_install() {
    # Installed before the lock so that a CUDA wheel from another index is the one
    # that stays: the lock does not name torch, and the project goes in --no-deps.
    local pip
    pip="$(vbin "$1")/python$EXE -m pip"
    if [ -n "$CCDM_TORCH_INDEX" ]; then
        $pip install --index-url "$CCDM_TORCH_INDEX" "$CCDM_TORCH"
    else
        $pip install "$CCDM_TORCH"
    fi
}

if [ "$RELOCK" = 1 ]; then
    log "re-resolving $LOCK"
    rm -rf "$BUILD/relock"
    "$PYTHON" -m venv "$BUILD/relock"
    torch_install "$BUILD/relock"
    RPY="$(vbin "$BUILD/relock")/python$EXE"
    "$RPY" -c '
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if not d.replace(" ", "").startswith("torch")))' \
        > "$BUILD/relock-input.txt"
    "$RPY" -m pip install -r "$BUILD/relock-input.txt" "pyinstaller==6.22.*" setuptools wheel
    {
        sed -n '1,3p' "$LOCK"
        "$RPY" -m pip freeze --all | grep -v -i -E '^(torch|pip)=='
    } > "$LOCK.new"
    mv "$LOCK.new" "$LOCK"
    rm -rf "$BUILD/relock"
    log "wrote $LOCK"
    exit 0
fi

inputs_hash="$("$PYTHON" -c '
import hashlib, platform, sys
h = hashlib.sha256(open(sys.argv[1], "rb").read())
h.update("\0".join([*sys.argv[2:], sys.version, platform.machine()]).encode())
print(h.hexdigest())' "$LOCK" "$CCDM_TORCH" "$CCDM_TORCH_INDEX")"

log "build environment ($VENV)"
if [ "$REUSE" = 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$inputs_hash" ]; then
    echo "reusing $VENV (inputs unchanged)"
    VPY="$(vbin "$VENV")/python$EXE"
else
    rm -rf "$VENV"
    mkdir -p "$BUILD"
    "$PYTHON" -m venv "$VENV"
    VPY="$(vbin "$VENV")/python$EXE"
    torch_install "$VENV"
    "$VPY" -m pip install -r "$LOCK"
    echo "$inputs_hash" > "$STAMP"
fi

log "installing ccdm-gui into the build environment"
# From a fresh copy: setuptools builds in the source folder, and its build/lib
# would keep modules deleted since the last build. --no-deps: everything is
# pinned above; a resolver here could only add what the lock leaves out.
rm -rf "$BUILD/src"
mkdir -p "$BUILD/src"
cp -r pyproject.toml setup.py ccdm_gui "$BUILD/src/"
if [ -f README.md ]; then cp README.md "$BUILD/src/"; fi
find "$BUILD/src" -name __pycache__ -prune -exec rm -rf {} +
# the compiled fold as built in place for this checkout's venv: built afresh below
find "$BUILD/src" \( -name '*.so' -o -name '*.pyd' \) -delete
"$VPY" -m pip install --no-deps --no-build-isolation --force-reinstall --no-cache-dir \
    "$BUILD/src" >/dev/null
"$VPY" -m pip check
for unwanted in scipy matplotlib pandas torchvision PyQt5 PyQt6 PySide2; do
    if "$VPY" -m pip show -q "$unwanted" >/dev/null 2>&1; then
        echo "build.sh: $unwanted is in the build environment; it would be bundled" >&2
        exit 1
    fi
done
VERSION="$("$VPY" -c 'import ccdm_gui; print(ccdm_gui.__version__)')"
ARCH="$("$VPY" -c 'import platform; print(platform.machine().lower())')"

log "PyInstaller bundle (ccdm-gui $VERSION)"
rm -rf dist/ccdm-gui dist/ccdm-gui.app
"$VPY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath "$BUILD/pyinstaller" packaging/ccdm-gui.spec
du -sh dist/ccdm-gui

log "bundle smoke test"
dist/ccdm-gui/ccdm$EXE --version

if [ "$PACKAGES" = 1 ]; then
    case "$OS" in
        linux)
            TARBALL="dist/ccdm-gui-$VERSION-linux-$ARCH.tar.gz"
            log "tarball $TARBALL"
            tar -C dist -cf - ccdm-gui | gzip -6 > "$TARBALL.part"
            mv "$TARBALL.part" "$TARBALL"
            log "Debian package"
            bash packaging/linux/make_deb.sh dist/ccdm-gui "$VERSION" "$(dpkg --print-architecture)" dist
            ls -l "$TARBALL" dist/*.deb
            ;;
        macos)
            log "disk image"
            bash packaging/macos/make_dmg.sh dist/ccdm-gui.app "$VERSION" "$ARCH" dist
            ;;
        windows)
            log "installer"
            ISCC="$(command -v iscc || command -v ISCC || true)"
            if [ -z "$ISCC" ] && [ -x "/c/Program Files (x86)/Inno Setup 6/ISCC.exe" ]; then
                ISCC="/c/Program Files (x86)/Inno Setup 6/ISCC.exe"
            fi
            if [ -z "$ISCC" ]; then
                echo "build.sh: Inno Setup (iscc) not found; the bundle is in dist/ccdm-gui" >&2
                exit 1
            fi
            # Windows setup icons must be .ico; Pillow (in the build venv) converts.
            "$VPY" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2], sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])' \
                resources/icons/ccdm-gui.png "$BUILD/ccdm-gui.ico"
            # Git Bash rewrites arguments that start with "/" as paths unless told not to.
            MSYS2_ARG_CONV_EXCL="*" "$ISCC" "/DAppVersion=$VERSION" \
                "/DIconFile=$(cygpath -w "$ROOT/$BUILD/ccdm-gui.ico")" \
                "$(cygpath -w "$ROOT/packaging/windows/ccdm-gui.iss")"
            ;;
    esac
fi
log "done"
