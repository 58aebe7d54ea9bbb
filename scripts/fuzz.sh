#!/usr/bin/env bash
# Fuzz the scheduler's CIB reader with cargo-fuzz (libFuzzer) for a while.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET] [-- LIBFUZZER_ARGS...]
#   SECONDS  how long to fuzz (default 60)
#   TARGET   cib_reader (default: read_cib on arbitrary UTF-8) or
#            cib_schedule (read_cib, then schedule whatever it accepts)
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
if ! [ -f "$fuzz/fuzz_targets/$target.rs" ]; then
  echo "error: no fuzz target '$target' (have: $(find "$fuzz/fuzz_targets" -name '*.rs' -printf '%f ' | sed 's/\.rs//g'))" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

corpus=$fuzz/corpus/$target
mkdir -p "$corpus"
seeded=0
for f in "$root"/deploy/examples/*.xml "$root"/scheduler/conformance/cases-upstream/*.xml; do
  [ -f "$f" ] || continue
  cp -n "$f" "$corpus/" 2>/dev/null || true
  seeded=$((seeded + 1))
done
echo "fuzzing $target for ${secs}s; corpus $corpus ($(find "$corpus" -type f | wc -l) files, $seeded seeds offered)"

cd "$root"
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run --fuzz-dir "$fuzz" "$target" "$corpus" -- \
  -max_total_time="$secs" -dict="$fuzz/cib.dict" -max_len=262144 -timeout=20 -rss_limit_mb=4096 "$@"
