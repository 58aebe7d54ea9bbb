#!/usr/bin/env bash
# Fetch Pacemaker's scheduler regression inputs from Debian's source package
# and build the conformance cases listed in cases.txt.
#
# Usage: fetch-cases.sh [DEST]
#   DEST  where to write NAME.xml + NAME.expected.json
#         (default: $HA_CONFORMANCE_CASES, else scheduler/conformance/cases-upstream)
#
# The source package (`apt-get source pacemaker`, Debian 12 "bookworm",
# Pacemaker 2.1.5) is downloaded once into the cache directory
# ($HA_CACHE_DIR, else /var/cache/ha-conformance as root, else
# ~/.cache/ha-conformance) and reused from there. As root, a missing deb-src
# entry and a missing dpkg-dev are added; otherwise the script says what to do.
# The built cases are checked against cases.sha256 (the cases our figures were
# measured on); set HA_CONFORMANCE_ALLOW_DRIFT=1 to accept different ones.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$here/common.sh"

dest=${1:-${HA_CONFORMANCE_CASES:-$here/cases-upstream}}
cache=$(ha_cache_dir)
srcdir=$cache/pacemaker-source
debsrc_uri=${HA_DEBSRC_URI:-http://deb.debian.org/debian}
debsrc_suite=${HA_DEBSRC_SUITE:-bookworm}

die() { echo "error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

find_cts() {
  local d
  for d in "$srcdir"/pacemaker-2.1.5*/cts/scheduler; do
    if [ -d "$d/xml" ] && [ -d "$d/summary" ] && [ -f "$srcdir/.complete" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

have_pacemaker_source() {
  # apt-cache showsrc prints nothing (and exits 0 on some versions) without deb-src.
  apt-cache showsrc pacemaker 2>/dev/null | grep -q '^Package: pacemaker$'
}

ensure_debsrc() {
  have_pacemaker_source && return 0
  if ! is_root; then
    die "apt has no source entry for pacemaker. As root, add a deb-src entry, e.g.
       /etc/apt/sources.list.d/ha-conformance-src.sources:
         Types: deb-src
         URIs: $debsrc_uri
         Suites: $debsrc_suite
         Components: main
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
       then run apt-get update (or run this script as root)."
  fi
  local f=/etc/apt/sources.list.d/ha-conformance-src.sources
  echo "adding $f (deb-src $debsrc_uri $debsrc_suite main)"
  cat >"$f" <<EOF
Types: deb-src
URIs: $debsrc_uri
Suites: $debsrc_suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq || die "apt-get update failed"
  have_pacemaker_source || die "apt still finds no source package 'pacemaker' after adding $f"
}

ensure_dpkg_source() {
  command -v dpkg-source >/dev/null 2>&1 && return 0
  is_root || die "dpkg-source is missing: install dpkg-dev (apt-get install dpkg-dev)"
  echo "installing dpkg-dev"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null ||
    die "apt-get install dpkg-dev failed"
}

fetch_source() {
  ensure_debsrc
  ensure_dpkg_source
  echo "downloading Debian's pacemaker source package into $srcdir"
  rm -rf "$srcdir.tmp"
  mkdir -p "$srcdir.tmp"
  # apt warns that it downloads unsandboxed as root when _apt cannot write here: harmless.
  if ! (cd "$srcdir.tmp" && apt-get source -qq pacemaker 2>&1 | grep -v -e "unsandboxed as root" -e "^dpkg-source: info:" >&2; exit "${PIPESTATUS[0]}"); then
    die "apt-get source pacemaker failed (see above)"
  fi
  ls -d "$srcdir.tmp"/pacemaker-2.1.5*/cts/scheduler/xml >/dev/null 2>&1 ||
    die "the source package is not Pacemaker 2.1.5 or has no cts/scheduler: $(ls "$srcdir.tmp")"
  touch "$srcdir.tmp/.complete"
  rm -rf "$srcdir"
  mv "$srcdir.tmp" "$srcdir"
}

command -v python3 >/dev/null 2>&1 || die "python3 is required"
PYTHON=$(ha_python)

if cts=$(find_cts); then
  echo "using cached source: $cts"
else
  fetch_source
  cts=$(find_cts) || die "no cts/scheduler in $srcdir after download"
fi

rm -rf "$dest.tmp"
"$PYTHON" "$here/build-cases.py" "$cts" "$here/cases.txt" "$dest.tmp"

if ! (cd "$dest.tmp" && sha256sum --quiet -c "$here/cases.sha256" >"$dest.tmp/.sha256.log" 2>&1); then
  bad=$(grep -c 'FAILED' "$dest.tmp/.sha256.log" || true)
  if [ "${HA_CONFORMANCE_ALLOW_DRIFT:-0}" = 1 ]; then
    echo "warning: $bad case files differ from cases.sha256 (HA_CONFORMANCE_ALLOW_DRIFT=1):" >&2
    head -n 20 "$dest.tmp/.sha256.log" >&2
  else
    head -n 20 "$dest.tmp/.sha256.log" >&2
    die "$bad case files differ from the ones in cases.sha256 (a different Debian revision of
       Pacemaker?). Figures would not be comparable. Set HA_CONFORMANCE_ALLOW_DRIFT=1 to use them
       anyway, or update cases.txt / cases.sha256 on purpose."
  fi
fi
rm -f "$dest.tmp/.sha256.log"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$(find "$dest" -name '*.expected.json' | wc -l) conformance cases ready in $dest"
