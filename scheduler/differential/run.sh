#!/usr/bin/env bash
# Differential test: hactl vs Pacemaker's crm_simulate on generated CIBs.
#
# Usage: run.sh [-n SEEDS] [-s FIRST_SEED] [-j JOBS] [-o OUT_DIR]
#   -n  how many consecutive seeds (default 205: at least 200 compared)     -s  first seed (default 1)
#   -j  parallel jobs (default: number of CPUs; crm_simulate -S is CPU-bound)
#   -o  where per-seed files go (default <target>/differential)
# Env: HACTL (default <target>/release/hactl), HA_CACHE_DIR (see ../conformance/common.sh)
#
# For each seed S: bench/gen_cib.py writes a CIB with 2..8 nodes, 10..60
# primitives and a placement strategy, all derived from S (see params());
# `crm_simulate -x F -S` is turned into placement JSON by placement.py and
# compared with `hactl simulate --cib F --output json` by compare.py.
# Inputs on which crm_simulate reports "An invalid transition was produced",
# or exits nonzero otherwise, are skipped and counted apart. crm_simulate
# outputs are cached by sha256 of the input and crm_simulate's version.
# Fails when the agreement rate is below "differential-agreement: X%" in
# scheduler/CONFORMANCE.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
conf=$here/../conformance
# shellcheck source=SCRIPTDIR/../conformance/common.sh
. "$conf/common.sh"
gen=$here/../bench/gen_cib.py

# Parameters of seed S: nodes, primitives, strategy.
params() {
  local s=$1 strategies=(utilization default balanced minimal)
  echo "$((2 + s % 7)) $((10 + (s * 13) % 51)) ${strategies[$(((s / 7) % 4))]}"
}

# Worker: one seed. Writes $OUT/S.result = "S STATUS NODES PRIMS STRATEGY".
one() {
  local s=$1 n m strategy f status
  read -r n m strategy <<<"$(params "$s")"
  f=$OUT/$s.xml
  rm -f "$OUT/$s".*
  if ! "$PYTHON" "$gen" -n "$n" -m "$m" --strategy "$strategy" --seed "$s" -o "$f" 2>"$OUT/$s.gen.err"; then
    echo "$s gen-error $n $m $strategy" >"$OUT/$s.result"
    return 0
  fi
  # crm_simulate, cached
  local key entry
  key=$(sha256sum "$f" | cut -d' ' -f1)
  entry=$CRM_CACHE/$key
  if ! [ -f "$entry.rc" ]; then
    local rc=0
    timeout 600 crm_simulate -x "$f" -S >"$entry.out.$$" 2>"$entry.err.$$" || rc=$?
    mv "$entry.out.$$" "$entry.out"
    mv "$entry.err.$$" "$entry.err"
    echo "$rc" >"$entry.rc.$$"
    mv "$entry.rc.$$" "$entry.rc"
  fi
  local crm_rc
  crm_rc=$(cat "$entry.rc")
  if grep -qs "An invalid transition was produced" "$entry.out" "$entry.err"; then
    status=skip-invalid
  elif [ "$crm_rc" != 0 ]; then
    status=skip-crm-error
    head -c 2000 "$entry.err" >"$OUT/$s.crm.err"
  elif ! "$PYTHON" "$conf/placement.py" --leaves --with-nodes --cib "$f" - <"$entry.out" \
    >"$OUT/$s.expected.json" 2>"$OUT/$s.placement.err"; then
    status=skip-placement-error
  elif ! timeout 60 "$HACTL" simulate --cib "$f" --output json >"$OUT/$s.actual.json" 2>"$OUT/$s.hactl.err"; then
    status=hactl-error
  elif "$PYTHON" "$conf/compare.py" "$OUT/$s.expected.json" "$OUT/$s.actual.json" >"$OUT/$s.diff" 2>&1; then
    status=agree
  else
    status=disagree
  fi
  echo "$s $status $n $m $strategy" >"$OUT/$s.result"
}

if [ "${1:-}" = "--one" ]; then
  one "$2"
  exit 0
fi

seeds=205
first=1
jobs=$(nproc 2>/dev/null || echo 2)
out=""
while getopts "n:s:j:o:h" opt; do
  case $opt in
    n) seeds=$OPTARG ;;
    s) first=$OPTARG ;;
    j) jobs=$OPTARG ;;
    o) out=$OPTARG ;;
    *)
      sed -n '2,9s/^# \{0,1\}//p' "$0"
      exit 2
      ;;
  esac
done
for v in "$seeds" "$first" "$jobs"; do
  case $v in '' | *[!0-9]*)
    echo "error: -n, -s and -j take non-negative integers, got '$v'" >&2
    exit 2
    ;;
  esac
done

command -v python3 >/dev/null 2>&1 || { echo "error: python3 is required" >&2; exit 1; }
command -v crm_simulate >/dev/null 2>&1 || {
  echo "error: crm_simulate not found: apt-get install pacemaker-cli-utils" >&2
  exit 1
}
HACTL=$(ha_hactl)
ha_require_hactl "$HACTL"
case $HACTL in /*) ;; */*) HACTL=$PWD/$HACTL ;; esac

recorded=$(ha_recorded_figure differential-agreement)
min=${recorded%\%}
if ! awk -v m="$min" 'BEGIN { exit !(m ~ /^[0-9]+(\.[0-9]+)?$/) }'; then
  echo "error: bad differential-agreement figure '$recorded' in scheduler/CONFORMANCE.md" >&2
  exit 1
fi

out=${out:-$(ha_target_dir)/differential}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.result

version=$(crm_simulate --version 2>/dev/null | head -n 1 | tr -c 'A-Za-z0-9.\n' '_')
pkgver=$(dpkg-query -W -f='${Version}' pacemaker-cli-utils 2>/dev/null | tr -c 'A-Za-z0-9.+~' '_' || true)
crm_cache=$(ha_cache_dir)/crm_simulate/${version}${pkgver:+-$pkgver}
mkdir -p "$crm_cache"

last=$((first + seeds - 1))
echo "differential: seeds $first..$last, $jobs jobs, hactl $HACTL"
echo "  crm_simulate cache: $crm_cache"
start=$SECONDS
PYTHON=$(ha_python)
export OUT=$out HACTL CRM_CACHE=$crm_cache PYTHON
seq "$first" "$last" | xargs -P "$jobs" -n 1 "$here/run.sh" --one
elapsed=$((SECONDS - start))

declare -A count=()
disagreeing=()
for ((s = first; s <= last; s++)); do
  if ! [ -f "$out/$s.result" ]; then
    echo "error: seed $s produced no result" >&2
    exit 1
  fi
  read -r _ st _ _ _ <"$out/$s.result"
  count[$st]=$((${count[$st]:-0} + 1))
  case $st in disagree | hactl-error) disagreeing+=("$s") ;; esac
done
agree=${count[agree]:-0}
compared=$((agree + ${count[disagree]:-0} + ${count[hactl-error]:-0}))
by_strategy=$(cat "$out"/*.result | awk '
  $2 == "agree" || $2 == "disagree" || $2 == "hactl-error" { t[$5]++; if ($2 == "agree") a[$5]++ }
  END { for (k in t) printf "%s %d/%d, ", k, a[k], t[k] }' | sed 's/, $//')
echo "  agreement by placement strategy: $by_strategy"

echo "  skipped: ${count[skip-invalid]:-0} invalid transitions, ${count[skip-crm-error]:-0} crm_simulate errors," \
  "${count[skip-placement-error]:-0} unreadable crm_simulate outputs, ${count[gen-error]:-0} generator errors"
if [ "${#disagreeing[@]}" -gt 0 ]; then
  echo "  disagreeing seeds (${#disagreeing[@]}, of which hactl errors: ${count[hactl-error]:-0}):"
  echo "    ${disagreeing[*]}" | fold -s -w 96
  shown=0
  for s in "${disagreeing[@]}"; do
    [ "$shown" -lt 5 ] || break
    shown=$((shown + 1))
    read -r _ st n m strategy <"$out/$s.result"
    echo "  seed $s ($n nodes, $m primitives, $strategy):" \
      "python3 scheduler/bench/gen_cib.py -n $n -m $m --strategy $strategy --seed $s -o s$s.xml"
    if [ "$st" = hactl-error ]; then
      echo "    hactl failed: $(head -c 300 "$out/$s.hactl.err" | tr '\n' ' ')"
    else
      head -n 5 "$out/$s.diff" | sed 's/^/  /'
      more=$(($(wc -l <"$out/$s.diff") - 5))
      [ "$more" -le 0 ] || echo "      ... $more more (see $out/$s.diff)"
    fi
  done
fi
if [ "$compared" -eq 0 ]; then
  echo "error: no seed could be compared (all skipped)" >&2
  exit 1
fi
rate=$(awk -v a="$agree" -v c="$compared" 'BEGIN { printf "%.1f", 100 * a / c }')
echo "differential: $agree/$compared inputs agree ($rate%) in ${elapsed}s; recorded minimum: $recorded"
if awk -v r="$rate" -v m="$min" 'BEGIN { exit !(r + 0 < m + 0) }'; then
  echo "FAIL: differential agreement dropped below the recorded $recorded (scheduler/CONFORMANCE.md)" >&2
  exit 1
fi
if awk -v r="$rate" -v m="$min" 'BEGIN { exit !(r + 0 > m + 0) }'; then
  echo "note: better than recorded; raise 'differential-agreement: $rate%' in scheduler/CONFORMANCE.md"
fi
