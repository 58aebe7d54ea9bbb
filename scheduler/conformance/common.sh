# Shared helpers for the conformance, differential and benchmark scripts.
# Source it (`. common.sh`); it defines functions and sets nothing else.
# shellcheck shell=bash

# The workspace root (two levels above this file).
ha_root() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

# Where downloaded sources and crm_simulate outputs are cached between runs:
# $HA_CACHE_DIR if set, else /var/cache/ha-conformance when we may write
# there (root), else ${XDG_CACHE_HOME:-$HOME/.cache}/ha-conformance.
ha_cache_dir() {
  local d
  if [ -n "${HA_CACHE_DIR:-}" ]; then
    d=$HA_CACHE_DIR
  elif { [ -d /var/cache/ha-conformance ] && [ -w /var/cache/ha-conformance ]; } ||
    { [ ! -e /var/cache/ha-conformance ] && [ -w /var/cache ]; }; then
    d=/var/cache/ha-conformance
  else
    d=${XDG_CACHE_HOME:-$HOME/.cache}/ha-conformance
  fi
  mkdir -p "$d" || { echo "error: cannot create cache directory $d (set HA_CACHE_DIR)" >&2; return 1; }
  (cd "$d" && pwd)
}

# The cargo target directory (respects CARGO_TARGET_DIR, relative to the root).
ha_target_dir() {
  local root t
  root=$(ha_root)
  t=${CARGO_TARGET_DIR:-target}
  case $t in
    /*) echo "$t" ;;
    *) echo "$root/$t" ;;
  esac
}

# The hactl binary to test: $HACTL if set, else the release build.
ha_hactl() {
  if [ -n "${HACTL:-}" ]; then
    echo "$HACTL"
  else
    echo "$(ha_target_dir)/release/hactl"
  fi
}

# Checks that hactl exists and can run; prints a hint otherwise.
ha_require_hactl() {
  local h=$1
  if ! [ -x "$h" ] && ! command -v "$h" >/dev/null 2>&1; then
    echo "error: hactl not found at $h" >&2
    echo "       build it with: cargo build --release -p ha-node --bin hactl (or set HACTL=path)" >&2
    return 1
  fi
}

# Prints the value recorded in scheduler/CONFORMANCE.md for KEY (the text after
# "KEY:" on the first line that starts with it), e.g. "0/320" or "0.0%".
ha_recorded_figure() {
  local key=$1 file
  file="$(ha_root)/scheduler/CONFORMANCE.md"
  [ -f "$file" ] || { echo "error: $file is missing" >&2; return 1; }
  local v
  v=$(sed -n "s/^[[:space:]*-]*\`\{0,1\}$key:[[:space:]]*\([^\`[:space:]]*\).*/\1/p" "$file" | head -n 1)
  [ -n "$v" ] || { echo "error: no '$key: ...' line in $file" >&2; return 1; }
  echo "$v"
}

# The python3 interpreter itself, resolved once: version-manager shims (pyenv)
# cost ~0.1 s per start, which adds up over hundreds of calls. $PYTHON wins.
ha_python() {
  local p
  if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
  elif p=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -x "$p" ]; then
    echo "$p"
  else
    echo python3
  fi
}
