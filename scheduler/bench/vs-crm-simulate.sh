#!/usr/bin/env bash
# Time one scheduler pass of Pacemaker (`crm_simulate -x F -R -Q`) against
# `hactl simulate --cib F --output json`, whole process, on generated CIBs.
#
# Usage: vs-crm-simulate.sh [--slow] [--runs N] [--seed S] [--keep DIR]
#   --slow      also run crm_simulate at 64 nodes / 5,000 primitives (~150 s a run)
#   --runs N    runs per measurement, the median is reported (default 3)
#   --seed S    gen_cib.py seed (default 1)
#   --keep DIR  write the generated CIBs to DIR and keep them (default: a temp dir)
# Env: HACTL (default <target>/release/hactl)
#
# Sizes (nodes/primitives): 2/10, 16/200, 32/1000, 64/5000, 100/10000.
# crm_simulate runs on the first three (and 64/5000 with --slow); hactl on all.
# Time is wall-clock seconds (median); RSS is the largest peak resident set
# size over the runs (GNU time's %M).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/../conformance/common.sh
. "$here/../conformance/common.sh"

slow=0
runs=3
seed=1
keep=""
while [ $# -gt 0 ]; do
  case $1 in
    --slow) slow=1; shift ;;
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --seed) seed=${2:?--seed needs a number}; shift 2 ;;
    --keep) keep=${2:?--keep needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $runs$seed in '' | *[!0-9]*) echo "error: --runs and --seed take integers" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] || { echo "error: --runs must be at least 1" >&2; exit 2; }

if ! [ -x /usr/bin/time ]; then
  echo "error: /usr/bin/time (GNU time) is missing: apt-get install time" >&2
  exit 1
fi
have_crm=1
if ! command -v crm_simulate >/dev/null 2>&1; then
  have_crm=0
  echo "warning: crm_simulate not found (apt-get install pacemaker-cli-utils): hactl only" >&2
fi
hactl=$(ha_hactl)
ha_require_hactl "$hactl"
python=$(ha_python)

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  dir=$(cd "$keep" && pwd)
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
fi

# measure NAME CMD...: runs CMD $runs times; sets T (median seconds) and RSS (max MB),
# or T=error when a run fails.
measure() {
  local i t0 t1 times=() rss_max=0 rss log=$dir/last.log
  for ((i = 0; i < runs; i++)); do
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f %M -o "$dir/rss" "$@" >/dev/null 2>"$log"; then
      echo "warning: '$*' failed: $(tail -c 300 "$log" | tr '\n' ' ')" >&2
      T=error
      RSS=-
      return 0
    fi
    t1=$EPOCHREALTIME
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
    rss=$(tail -n 1 "$dir/rss")
    [ "$rss" -le "$rss_max" ] || rss_max=$rss
  done
  T=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  RSS=$(awk -v k="$rss_max" 'BEGIN { printf "%.0f", k / 1024 }')
}

fmt_rss() { case $1 in [0-9]*) echo "$1 MB" ;; *) echo "$1" ;; esac; }
fmt_time() { case $1 in error | -) echo "$1" ;; *) awk -v t="$1" 'BEGIN { printf(t < 1 ? "%.3f s" : "%.2f s", t) }' ;; esac; }

echo "crm_simulate: $( ((have_crm)) && crm_simulate --version 2>/dev/null | head -n 1 || echo none)"
echo "hactl:        $hactl"
echo "runs: $runs (median time, max peak RSS); seed $seed; $(nproc) CPUs"
echo
printf '| %-18s | %8s | %14s | %8s | %10s | %8s | %9s |\n' \
  "nodes / primitives" "CIB" "crm_simulate" "RSS" "hactl" "RSS" "speed-up"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "--------------------" "----------" "----------------" \
  "----------" "------------" "----------" "-----------"
for size in 2/10 16/200 32/1000 64/5000 100/10000; do
  n=${size%/*}
  m=${size#*/}
  f=$dir/cib-$n-$m-$seed.xml
  [ -s "$f" ] || "$python" "$here/gen_cib.py" -n "$n" -m "$m" --seed "$seed" -o "$f"
  mb=$(awk -v b="$(wc -c <"$f")" 'BEGIN { printf "%.2f MB", b / 1048576 }')
  crm_t=- crm_rss=-
  if ((have_crm)) && { [ "$m" -le 1000 ] || { [ "$m" -eq 5000 ] && ((slow)); }; }; then
    measure crm_simulate -x "$f" -R -Q
    crm_t=$T crm_rss=$RSS
  fi
  measure "$hactl" simulate --cib "$f" --output json
  h_t=$T h_rss=$RSS
  ratio=-
  if [[ $crm_t =~ ^[0-9.]+$ && $h_t =~ ^[0-9.]+$ ]]; then
    ratio=$(awk -v a="$crm_t" -v b="$h_t" 'BEGIN { printf(b > 0 ? "%.1fx" : "-", a / b) }')
  fi
  printf '| %-18s | %8s | %14s | %8s | %10s | %8s | %9s |\n' "$n / $m" "$mb" "$(fmt_time "$crm_t")" \
    "$(fmt_rss "$crm_rss")" "$(fmt_time "$h_t")" "$(fmt_rss "$h_rss")" "$ratio"
done
