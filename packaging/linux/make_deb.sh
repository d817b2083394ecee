#!/usr/bin/env bash
# Wrap a built bundle into a Debian package with dpkg-deb.
#
#   bash packaging/linux/make_deb.sh BUNDLE_DIR VERSION [ARCH] [OUT_DIR]
#
# Layout: the bundle under /opt/ccdm-gui; /usr/bin/ccdm and /usr/bin/ccdm-gui as
# relative symlinks into it (relative so that `dpkg -x` into a scratch root gives
# a working tree too); the desktop entry and icon under /usr/share.
# Called by packaging/build.sh; needs dpkg-deb (and no root: --root-owner-group).
set -euo pipefail

BUNDLE="${1:?bundle directory (dist/ccdm-gui)}"
VERSION="${2:?version}"
ARCH="${3:-$(dpkg --print-architecture)}"
OUT="${4:-dist}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NAME=ccdm-gui
STAGE="$ROOT/build/pkg/deb/${NAME}_${VERSION}_${ARCH}"
DEB="$OUT/${NAME}_${VERSION}_${ARCH}.deb"

# The Qt xcb platform plugin and libGL/EGL are loaded from the system, not the
# bundle (PyInstaller leaves graphics, font and bus libraries to the host: they
# must match its drivers and X server). packaging/linux/check_deb_depends.sh
# lists what the bundle actually loads from the host, to keep this list honest.
DEPENDS=(
    "libc6 (>= 2.28)"
    "libstdc++6"
    "libgl1"
    "libegl1"
    "libopengl0"
    "libfontconfig1"
    "libfreetype6"
    "libdbus-1-3"
    "libglib2.0-0t64 | libglib2.0-0"
    "libx11-6"
    "libx11-xcb1"
    "libxcb1"
    "libxcb-cursor0"
    "libxcb-icccm4"
    "libxcb-image0"
    "libxcb-keysyms1"
    "libxcb-randr0"
    "libxcb-render-util0"
    "libxcb-render0"
    "libxcb-shape0"
    "libxcb-shm0"
    "libxcb-sync1"
    "libxcb-xfixes0"
    "libxcb-xinerama0"
    "libxcb-xkb1"
    "libxkbcommon0"
    "libxkbcommon-x11-0"
)

rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" \
    "$STAGE/usr/share/applications" "$STAGE/usr/share/doc/$NAME"

# Hard links: the bundle is ~1 GB and dpkg-deb only reads it.
cp -al "$(cd "$BUNDLE" && pwd)" "$STAGE/opt/$NAME" 2>/dev/null || cp -a "$BUNDLE" "$STAGE/opt/$NAME"
ln -s "../../opt/$NAME/ccdm" "$STAGE/usr/bin/ccdm"
ln -s "../../opt/$NAME/ccdm-gui" "$STAGE/usr/bin/ccdm-gui"

install -m 644 "$ROOT/resources/ccdm-gui.desktop" "$STAGE/usr/share/applications/$NAME.desktop"
icons="$ROOT/resources/icons"
if [ -f "$icons/ccdm-gui.svg" ]; then
    install -D -m 644 "$icons/ccdm-gui.svg" "$STAGE/usr/share/icons/hicolor/scalable/apps/$NAME.svg"
fi
# Every PNG size there is (ccdm-gui.png, ccdm-gui-64.png, ...) goes to the hicolor
# folder of its size, read from the PNG header (width: big-endian at byte 16).
for png in "$icons"/ccdm-gui*.png; do
    [ -f "$png" ] || continue
    size="$(od -An -tu1 -j16 -N4 "$png" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')"
    install -D -m 644 "$png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/$NAME.png"
done
if ! ls "$STAGE"/usr/share/icons/hicolor/*/apps/"$NAME".* >/dev/null 2>&1; then
    echo "make_deb.sh: no icon (resources/icons/ccdm-gui.svg or .png)" >&2
    exit 1
fi

{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: ccdm-gui"
    echo
    echo "Files: *"
    echo "License: MIT"
    echo
    echo "Files: opt/ccdm-gui/_internal/resources/datasets/mnist/*"
    echo "Comment: MNIST training set (Y. LeCun, C. Cortes, C. J. C. Burges); see the"
    echo " licence note shipped beside it."
    echo
    echo "Files: opt/ccdm-gui/_internal/*"
    echo "Comment: bundled third-party libraries (Python, PyTorch, Qt for Python, NumPy,"
    echo " Pillow, PyAV/FFmpeg, pyqtgraph, safetensors) under their own licences,"
    echo " which are included beside them in their *.dist-info folders."
} > "$STAGE/usr/share/doc/$NAME/copyright"
chmod 644 "$STAGE/usr/share/doc/$NAME/copyright"

installed_kb="$(du -sk --apparent-size "$STAGE" | cut -f1)"
{
    echo "Package: $NAME"
    echo "Version: $VERSION"
    echo "Architecture: $ARCH"
    echo "Maintainer: ${CCDM_DEB_MAINTAINER:-ccdm-gui developers <ccdm-gui@users.noreply.github.com>}"
    echo "Installed-Size: $installed_kb"
    echo "Depends: $(IFS=,; echo "${DEPENDS[*]}" | sed 's/,/, /g')"
    echo "Section: science"
    echo "Priority: optional"
    echo "Description: watch convolutional diffusion models create"
    echo " ccdm-gui shows a CNN diffusion model's samples beside the equivariant local"
    echo " score machine's, with the training patch each pixel came from. Self-contained"
    echo " bundle (Python, PyTorch for the CPU, Qt) under /opt/ccdm-gui; commands"
    echo " ccdm-gui (the window) and ccdm (command line, including ccdm self-test)."
} > "$STAGE/DEBIAN/control"

mkdir -p "$OUT"
# zstd, as Ubuntu uses since 21.10 and dpkg reads since 1.21.18 (Debian 12): on the
# 2-core build machine it packs the ~1 GB bundle in seconds, where dpkg-deb's
# default xz took over ten minutes for a package barely smaller. Set
# CCDM_DEB_COMPRESS=xz (or gzip, which any dpkg reads) for older systems.
comp="${CCDM_DEB_COMPRESS:-zstd}"
dpkg-deb --root-owner-group -Z"$comp" --build "$STAGE" "$DEB.part" >/dev/null
mv "$DEB.part" "$DEB"
rm -rf "$STAGE"
dpkg-deb --info "$DEB" | sed -n '1,12p'
echo "wrote $DEB"
