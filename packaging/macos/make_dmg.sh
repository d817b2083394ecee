#!/usr/bin/env bash
# Wrap dist/ccdm-gui.app into a compressed disk image with hdiutil.
#
#   bash packaging/macos/make_dmg.sh dist/ccdm-gui.app VERSION [ARCH] [OUT_DIR]
#
# NOT run by this project's tests (there is no Mac here); packaging/build.sh calls
# it on macOS and .github/workflows/packages.yml runs that on a macos runner.
# The .app is signed ad hoc by PyInstaller, not with a Developer ID, and not
# notarized: on first launch Gatekeeper asks the user to confirm (right-click, Open).
# The command line is inside the app; link it onto the PATH with
#   ln -s /Applications/ccdm-gui.app/Contents/MacOS/ccdm /usr/local/bin/ccdm
set -euo pipefail

APP="${1:?app bundle (dist/ccdm-gui.app)}"
VERSION="${2:?version}"
ARCH="${3:-$(uname -m)}"
OUT="${4:-dist}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STAGE="$ROOT/build/pkg/dmg"
DMG="$OUT/ccdm-gui-$VERSION-macos-$ARCH.dmg"

rm -rf "$STAGE"
mkdir -p "$STAGE" "$OUT"
# ditto keeps the bundle's symlinks, extended attributes and signature intact.
ditto "$APP" "$STAGE/$(basename "$APP")"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "ccdm-gui $VERSION" -srcfolder "$STAGE" -fs HFS+ \
    -format UDZO -imagekey zlib-level=9 -ov "$DMG"
rm -rf "$STAGE"
echo "wrote $DMG"
