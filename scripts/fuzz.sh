#!/usr/bin/env bash
# Fuzz a parser with cargo-fuzz (libFuzzer) for a while.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET|all] [-- LIBFUZZER_ARGS...]
#   SECONDS  how long to fuzz (default 60; with `all`, per target)
#   TARGET   scheduler/fuzz: cib_reader (default: read_cib on arbitrary
#            UTF-8), cib_schedule (read_cib, then schedule what it accepts),
#            crm_reader;
#            node/fuzz: rpc_request (Admin/Executor payload decoders, then
#            authz + apply / validation), raft_rpc (Raft messages, then the
#            sender's split), node_files (ha-node.toml, hactl.toml, tokens,
#            snapshot/guard files, log entries, agent meta-data, certificates);
#            drbd-driver/fuzz: drbd_events2 (events2 stream -> State::apply)
#   all      every target in turn; prints one summary line per target
#
# Only stable Rust is available, so cargo-fuzz's nightly flags are enabled with
# RUSTC_BOOTSTRAP=1. cargo-fuzz is installed (cargo install cargo-fuzz) when
# missing. The corpus (scheduler/fuzz/corpus/TARGET, not committed) is seeded
# from deploy/examples and, when fetched, the conformance cases. Crashes land in
# scheduler/fuzz/artifacts/TARGET; replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir scheduler/fuzz TARGET FILE
# Not part of CI.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$root/scheduler/fuzz

secs=60
target=cib_reader
if [ $# -gt 0 ] && [ "$1" != -- ]; then secs=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" != -- ]; then target=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" = -- ]; then shift; fi
case $secs in '' | *[!0-9]*) echo "error: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;; esac
all_targets() { find "$root"/scheduler/fuzz/fuzz_targets "$root"/node/fuzz/fuzz_targets "$root"/drbd-driver/fuzz/fuzz_targets -name '*.rs' -printf '%f\n' | sed 's/\.rs$//' | sort; }
if [ "$target" = all ]; then
  summary=$(mktemp)
  for t in $(all_targets); do
    log=$(mktemp)
    if "$0" "$secs" "$t" -- "$@" >"$log" 2>&1; then verdict=ok; else verdict=FAILED; fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*' || true)
    echo "$t: $verdict, ${runs:-?} executions in ${secs}s, $(grep -c '^==[0-9]*==ERROR\|panicked at' "$log" || true) crashes (log $log)" | tee -a "$summary"
  done
  ! grep -q FAILED "$summary"
  exit $?
fi
if [ -f "$root/node/fuzz/fuzz_targets/$target.rs" ]; then
  fuzz=$root/node/fuzz
fi
if [ -f "$root/drbd-driver/fuzz/fuzz_targets/$target.rs" ]; then
  fuzz=$root/drbd-driver/fuzz
fi
if ! [ -f "$fuzz/fuzz_targets/$target.rs" ]; then
  echo "error: no fuzz target '$target' (have: $(all_targets | tr '\n' ' '))" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

corpus=$fuzz/corpus/$target
mkdir -p "$corpus"
seeded=0
if [ "$fuzz" = "$root/scheduler/fuzz" ]; then
  seeds=("$root"/deploy/examples/*.xml "$root"/scheduler/conformance/cases-upstream/*.xml)
  dict=$fuzz/cib.dict
else
  seeds=("$fuzz"/seeds/"$target"/*)
  dict=$fuzz/json.dict
  if [ -f "$fuzz/$target.dict" ]; then dict=$fuzz/$target.dict; fi
fi
for f in "${seeds[@]}"; do
  [ -f "$f" ] || continue
  cp -n "$f" "$corpus/" 2>/dev/null || true
  seeded=$((seeded + 1))
done
echo "fuzzing $target for ${secs}s; corpus $corpus ($(find "$corpus" -type f | wc -l) files, $seeded seeds offered)"

cd "$root"
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run --fuzz-dir "$fuzz" "$target" "$corpus" -- \
  -max_total_time="$secs" -dict="$dict" -max_len=262144 -timeout=20 -rss_limit_mb=4096 "$@"
