#!/usr/bin/env bash
# List the shared libraries that a built bundle loads from the host system, and
# the Debian packages that provide them here, to compare with make_deb.sh's
# Depends. Plugins are loaded by Qt at run time, so ldd (not the executables'
# own dependencies) over every ELF file in the bundle is what tells.
#
#   bash packaging/linux/check_deb_depends.sh [dist/ccdm-gui]
set -euo pipefail
BUNDLE="$(cd "${1:-dist/ccdm-gui}" && pwd)"
libs="$(
    find "$BUNDLE" -type f \( -name '*.so*' -o -perm -u+x \) -print0 |
        xargs -0 file -L | grep -E 'ELF .* (shared object|executable)' | cut -d: -f1 |
        while read -r f; do
            LD_LIBRARY_PATH="$BUNDLE/_internal:$(dirname "$f")" ldd "$f" 2>/dev/null || true
        done |
        awk '/=>/ { print $1, $3 }' | grep -v " $BUNDLE/" | sort -u
)"
echo "$libs" | awk '$2 == "not" { print "NOT FOUND: " $1 }'
echo "$libs" | awk '$2 ~ /^\// { print $2 }' | while read -r path; do
    real="$(readlink -f "$path")"
    pkg="$(dpkg -S "$path" 2>/dev/null || dpkg -S "$real" 2>/dev/null || echo "?: $path")"
    echo "${pkg%%:*}"
done | sort | uniq -c | sort -k2
