#!/usr/bin/env bash
# Run hactl over Pacemaker's regression cases and hold the pass count to the
# figure recorded in scheduler/CONFORMANCE.md ("conformance-pass: N/320").
#
# Usage: check.sh [-v] [CASES_DIR]
#   CASES_DIR  built by fetch-cases.sh (default: $HA_CONFORMANCE_CASES,
#              else scheduler/conformance/cases-upstream)
#   -v         print every failing case with its differences (default: names only;
#              the full report is always written to <target>/conformance/run.log)
# Env: HACTL (default: <target>/release/hactl, target = $CARGO_TARGET_DIR or ./target)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$here/common.sh"

verbose=0
if [ "${1:-}" = "-v" ]; then verbose=1; shift; fi
cases=${1:-${HA_CONFORMANCE_CASES:-$here/cases-upstream}}
hactl=$(ha_hactl)
PYTHON=$(ha_python)
export PYTHON
ha_require_hactl "$hactl"

total=$(grep -cv '^[[:space:]]*\(#\|$\)' "$here/cases.txt")
have=$(find "$cases" -maxdepth 1 -name '*.expected.json' 2>/dev/null | wc -l)
if [ "$have" -ne "$total" ]; then
  echo "error: $cases holds $have cases, cases.txt lists $total: run $here/fetch-cases.sh first" >&2
  exit 1
fi

recorded=$(ha_recorded_figure conformance-pass)
min=${recorded%%/*}
case $min in '' | *[!0-9]*)
  echo "error: bad conformance-pass figure '$recorded' in scheduler/CONFORMANCE.md" >&2
  exit 1
  ;;
esac

logdir="$(ha_target_dir)/conformance"
mkdir -p "$logdir"
log=$logdir/run.log
start=$SECONDS
# run.sh exits 1 when any case fails; the tally decides here.
HACTL=$hactl "$here/run.sh" "$cases" >"$log" 2>&1 || true
elapsed=$((SECONDS - start))

tally=$(tail -n 1 "$log")
if ! [[ $tally =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  echo "error: run.sh did not finish with a tally; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
pass=${BASH_REMATCH[1]}
fail=${BASH_REMATCH[2]}

if [ "$verbose" = 1 ]; then
  grep -v '^[0-9]* passed, [0-9]* failed$' "$log" || true
else
  failing=$(sed -n 's/^FAIL \([^ :]*\).*/\1/p' "$log" | tr '\n' ' ')
  if [ -n "$failing" ]; then
    echo "failing cases ($fail): $failing" | fold -s -w 100
    errors=$(grep -c '^FAIL [^ ]*: hactl failed' "$log" || true)
    echo "(of which hactl exited with an error: $errors; details: $log or check.sh -v)"
  fi
fi

pct=$(awk -v p="$pass" -v t="$total" 'BEGIN { printf "%.1f", t ? 100 * p / t : 0 }')
# (no bare "N passed, M failed" line here: failing cases are expected, the figure decides)
echo "conformance: $pass/$total cases pass ($pct%), $fail differ, in ${elapsed}s; recorded minimum: $recorded"
if [ "$pass" -lt "$min" ]; then
  echo "FAIL: conformance dropped below the recorded $recorded (scheduler/CONFORMANCE.md)" >&2
  exit 1
fi
if [ "$pass" -gt "$min" ]; then
  echo "note: better than recorded; raise 'conformance-pass: $pass/$total' in scheduler/CONFORMANCE.md"
fi
