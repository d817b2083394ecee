#!/usr/bin/env bash
# The compiled fold of a base revision against this working tree's, one thread,
# alternately (the machine's drift hits both alike): best seconds per build and their
# ratio, for each patch length D (numbers per patch: 9 = P 3, 25 = P 5, 49 = P 7).
#
#   bash bench/foldc_ab.sh [BASE] [D ...]       e.g.  bash bench/foldc_ab.sh HEAD~1 9 25 49
#
# Env: QUERIES (512), KEYS (17820), ROUNDS (6), REPS per round (3). Both builds must
# print the same sum: they fold the same random data with this tree's exp polynomial
# (fused.EXP2_POLY; a base from before 154a8af, whose kernel had its own, won't build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-HEAD}
shift || true
dims=("$@")
[ ${#dims[@]} -gt 0 ] || dims=(9 25 49)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=${PYTHON:-$root/.venv/bin/python}
inc=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
poly=$(cd "$root" && "$py" -c "from ccdm_gui.core.machines.fused import EXP2_POLY; print(*EXP2_POLY)")
mkdir -p "$tmp/base"
for f in foldc.c foldc_body.h; do
    git -C "$root" show "$base:ccdm_gui/core/machines/$f" > "$tmp/base/$f"
done
cp "$root/bench/foldc_ab.c" "$tmp/base/"
cp "$root/bench/foldc_ab.c" "$tmp/"
gcc -O3 -I"$tmp/base" -I"$inc" "$tmp/base/foldc_ab.c" -o "$tmp/fold_base" -lm
gcc -O3 -I"$root/ccdm_gui/core/machines" -I"$inc" "$tmp/foldc_ab.c" -o "$tmp/fold_this" -lm
echo "D  base s   this s  base/this  (best of ${ROUNDS:-6} x ${REPS:-3}, ${QUERIES:-512} queries x ${KEYS:-17820} keys, one thread)"
for d in "${dims[@]}"; do
    for _ in $(seq "${ROUNDS:-6}"); do
        args=("$d" "${QUERIES:-512}" "${KEYS:-17820}" "${REPS:-3}" $poly)
        echo "$("$tmp/fold_base" "${args[@]}") $("$tmp/fold_this" "${args[@]}")"
    done | awk -v d="$d" 'BEGIN { b = 1e9; t = 1e9 }
        { if ($1 < b) b = $1; if ($3 < t) t = $3; sb = $2; st = $4 }
        END { printf "%-3d %.5f  %.5f  %.2f%s\n", d, b, t, b / t, (sb == st ? "" : "  SUMS DIFFER: " sb " " st) }'
done
