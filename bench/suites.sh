#!/usr/bin/env bash
# Wall time of `pytest suites/` on the default model: cold (empty geomcheck cache: LoRA
# training, merges and every embedding computed) and warm (the same cache again).
# Targets on a 2-core CPU: cold <= 180 s, warm <= 30 s (MiniLM); with --model smollm2-135m cold <= 600 s.
# Usage: bash bench/suites.sh [extra pytest args, e.g. -n 2, --model smollm2-135m]
# Measured (2026-12-01, --model smollm2-135m, by hand with the same commands): cold 614 s, warm 57 s.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
export GEOMCHECK_CACHE_DIR=$cache
run() {
  local start end
  start=$(date +%s.%N)
  python -m pytest suites/ -q -p no:cacheprovider "$@" >"$cache/last.log" 2>&1 || { tail -30 "$cache/last.log"; exit 1; }
  end=$(date +%s.%N)
  python -c "print(f'{$end - $start:.1f}')"
}
target=180
case " $* " in *smollm2*) target=600 ;; esac
cold=$(run "$@")
warm=$(run "$@")
tail -1 "$cache/last.log"
python - "$cold" "$warm" "$target" <<'PY'
import sys
cold, warm, target = map(float, sys.argv[1:])
print(f"pytest suites/ cold {cold:.1f} s (target {target:.0f} s, {cold / target:.2f} of it); "
      f"warm {warm:.1f} s (target 30 s, {warm / 30:.2f} of it)")
PY
