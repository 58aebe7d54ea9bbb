#!/bin/sh
# BMC chassis control for one lab guest, called by ipmi_sim (lan.conf:
# chassis_control "chassis.sh GUESTDIR"):
#   chassis.sh GUESTDIR get ITEM...          -> prints "power:0|1"
#   chassis.sh GUESTDIR set ITEM VALUE...    (power 0|1, reset 1)
# Power is real: "on" means GUESTDIR/qemu.pid is a live QEMU; "set power 0"
# SIGKILLs it (a hard power cut); "set power 1" runs GUESTDIR/start.sh,
# which boots the guest again with the same overlay and disks.
# Also used by lib.sh directly (lab_power on guests without a BMC).
D=$1
op=$2
shift 2
echo "$(date +%T.%N | cut -c1-12) $op $*" >> "$D/bmc-calls.log"

qemu_pid() {
    pid=$(cat "$D/qemu.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] || return 1
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
    *qemu-system*) ;;
    *) return 1 ;;
    esac
    # A killed, not yet reaped QEMU is a zombie: that is off.
    st=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

power_off() {
    if qemu_pid; then
        kill -9 "$pid" 2>/dev/null
        echo "$(date +%T.%N | cut -c1-12) killed $pid" >> "$D/bmc-calls.log"
        i=0
        while qemu_pid && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    fi
    rm -f "$D/qemu.pid"
}

power_on() {
    qemu_pid && return 0
    "$D/start.sh" >> "$D/start.log" 2>&1 < /dev/null
}

case "$op" in
get)
    for item in "$@"; do
        case "$item" in
        power) if qemu_pid; then echo power:1; else echo power:0; fi ;;
        esac
    done
    ;;
set)
    while [ $# -ge 2 ]; do
        case "$1" in
        power) if [ "$2" = 0 ]; then power_off; else power_on; fi ;;
        reset) power_off; power_on ;;
        esac
        shift 2
    done
    ;;
esac
exit 0
