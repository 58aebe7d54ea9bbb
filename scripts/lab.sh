#!/bin/bash
# VM lab (deploy/lab/README.md): Debian 12 guests under QEMU with DRBD,
# a shared L2 segment and simulated BMCs.
#
#   scripts/lab.sh build                 host packages + cached guest image
#   scripts/lab.sh [--keep] smoke        boot node1 node2 client, DRBD, VIP, BMC power cycle
#   scripts/lab.sh [--keep] SCENARIO     run deploy/lab/scenarios/SCENARIO.sh
#   scripts/lab.sh list                  list scenarios
#   scripts/lab.sh ssh RUNDIR NAME [CMD] ssh into a guest of a --keep run
#   scripts/lab.sh down RUNDIR           stop a --keep run
#
# HA_LAB_ATTACH=RUNDIR scripts/lab.sh SCENARIO: run against a --keep run.
# Environment: see the top of deploy/lab/lib.sh (HA_LAB_CACHE, HA_LAB_RUN, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../deploy/lab/lib.sh
. deploy/lab/lib.sh

while [ $# -gt 0 ]; do
    case "$1" in
    --keep) LAB_KEEP=1 ;;
    -h | --help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    --*) lab_die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
cmd=${1:-help}
shift || true

case "$cmd" in
build)
    lab_build
    echo "lab image: $LAB_IMAGE (built in ${LAB_BUILD_SECONDS:-0} s; 0 = cached)"
    ;;
list)
    for f in deploy/lab/scenarios/*.sh; do basename "$f" .sh; done
    ;;
down)
    lab_attach "${1:?usage: lab.sh down RUNDIR}"
    lab_down
    ;;
ssh)
    lab_attach "${1:?usage: lab.sh ssh RUNDIR NAME [CMD]}"
    g=${2:?usage: lab.sh ssh RUNDIR NAME [CMD]}
    shift 2
    if [ $# -eq 0 ]; then
        mapfile -t opts < <(lab__ssh_opts "$g")
        exec ssh "${opts[@]}" root@127.0.0.1
    fi
    lab_ssh "$g" "$@"
    ;;
help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    ;;
*)
    f=deploy/lab/scenarios/$cmd.sh
    [ -f "$f" ] || lab_die "no scenario '$cmd' (scripts/lab.sh list)"
    # HA_LAB_ATTACH=RUNDIR: run against the guests of a --keep run.
    [ -n "${HA_LAB_ATTACH:-}" ] && lab_attach "$HA_LAB_ATTACH"
    # shellcheck disable=SC1090
    . "$f" "$@"
    ;;
esac
