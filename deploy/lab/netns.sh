# shellcheck shell=bash
# Network-namespace lab harness (no VMs): "machines" that are network
# namespaces on one host, a switch, simulated BMCs whose power-off kills a
# machine. Sourced by deploy/lab/scenarios/mysql-vip.sh and firewall-pair.sh
# (and the BMCs' chassis script runs this file as a program:
# `bash netns.sh chassis RUN NAME ...`). Needs root, iproute2, util-linux
# (unshare, nsenter, setsid), ipmi_sim and ipmitool.
#
#   . deploy/lab/netns.sh
#   hn_init RUNDIR NET        # NET: first three octets of the lab's /24
#   hn_switch                 # netns ${HN_PREFIX}sw with bridge ${HN_PREFIX}br0
#   hn_machine node1 11       # describe a machine: address NET.11, MAC, BMC
#   hn_mount node1 SRC DST    # bind SRC on DST inside node1 (a disk)
#   hn_wipe node1 SRC DST [MODE]  # same, emptied at every power on (tmpfs-like)
#   hn_rc node1 'CMD'         # what node1 starts at boot (run under hn_enter)
#   hn_power_on node1         # link + mounts + hostname + rc, detached
#   hn_bmc_start node1        # ipmi_sim for node1 on NET.(200+11)
#   hn_ipmi node1 power off   # through node1's BMC, like an operator
#
# Stable API:
#   hn_init RUN NET           run dir (created 0700), lab /24 NET.0; the EXIT
#                             trap is the caller's: it must call hn_cleanup
#   hn_switch                 the switch: netns ${HN_PREFIX}sw, bridge
#                             ${HN_PREFIX}br0 (up), nothing else on it; the
#                             BMCs' addresses live on the bridge
#   hn_machine NAME N [bmc] [nonic]
#                             machine NAME: netns ${HN_PREFIX}NAME, eth0 with
#                             NET.N/24 and MAC 52:54:00:14:00:N, a veth onto
#                             the bridge (${HN_PREFIX}NAME-p in the switch);
#                             with "bmc", a BMC at NET.(200+N) (hn_bmc_start);
#                             "nonic": no eth0 (give the NICs with hn_nic)
#   hn_bridge BR              another segment: bridge ${HN_PREFIX}BR in the switch
#   hn_nic NAME IF BR CIDR    one more NIC of NAME: IF inside, on bridge
#                             ${HN_PREFIX}BR (port ${HN_PREFIX}NAME-pK for ethK),
#                             address CIDR; MACs 52:54:00:14:K:N in order
#   hn_mount / hn_wipe NAME SRC DST [MODE]   bind mounts of the machine's private mount
#                             namespace (SRC created; wiped at power on for
#                             hn_wipe: /run and /tmp of a real machine are
#                             tmpfs; MODE of SRC, default 0755: 1777 for /tmp)
#   hn_copy NAME SRC DST      bind the file SRC on the existing file DST
#   hn_rc NAME CMD            the machine's boot command (RUN/NAME/rc, run
#                             by bash inside the machine, detached, output in
#                             RUN/NAME/console.log)
#   hn_run_rc NAME            start the rc now (power on does it)
#   hn_rc_ha_node NAME BIN TOML LOG [PRE]
#                             the rc of a cluster node: PRE (e.g. a sleep),
#                             a new boot id in its wiped /run (boot_id_path),
#                             then exec BIN --config TOML >> LOG
#   hn_bins RUN BIN...        copy binaries into RUN/bin (each machine has
#                             its own /tmp: a checkout under /tmp is invisible)
#   hn_clear_stale NS...      kill and delete namespaces left by an
#                             interrupted run
#   hn_power_on NAME          create the namespace and link, start the machine
#                             ("holder" process: own UTS + mount namespace,
#                             hostname NAME, the mounts), then its rc
#   hn_power_off NAME         SIGKILL every process of the namespace (by
#                             `ip netns pids`) until none is left, then delete
#                             the namespace (its addresses and neighbours go
#                             with it, as with a power cut)
#   hn_powered NAME           rc 0 if the machine's namespace exists
#   hn_pids NAME              pids of the machine's network namespace
#   hn_in NAME CMD...         CMD in the machine's network namespace only
#   hn_enter NAME CMD...      CMD inside the machine: network, UTS and mount
#                             namespace of its holder (its mounts, hostname)
#   hn_net_in NS CMD...       CMD in any lab namespace (sw, client, ...)
#   hn_bmc_start NAME         ipmi_sim for NAME, user admin, password in
#                             RUN/bmc.pass (0600; never in argv), listening on
#                             NET.(200+N):623 on bridge ${HN_PREFIX}br0 (the
#                             switch namespace; ipmi_sim and its chassis
#                             script stay in the host's mount namespace);
#                             chassis power off = hn_power_off, on =
#                             hn_power_on (detached), get power = namespace
#                             exists; every call logged with its time in
#                             RUN/NAME/bmc-calls.log ("T get power 0|1",
#                             "T set power 0|1", "T set reset 1")
#   hn_ipmi NAME ARGS...      ipmitool -I lanplus -C 3 -E chassis ARGS on NAME's
#                             BMC, from the switch namespace
#   hn_cleanup                kill every process of every namespace of this
#                             run, the BMCs, delete namespaces; idempotent
#   hn_log MSG / hn_die MSG   messages on stderr (lab_log/lab_die if defined)
#
# Names: everything the host can see starts with ${HN_PREFIX:-hm}: netns
# hmsw, hmnode1, hmclient, ...; the bridge and the switch-side veth ends live
# inside hmsw, the machine-side end is "eth0" inside the machine.

HN_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/netns.sh
HN_PREFIX=${HN_PREFIX:-hm}
HN_RUN=${HN_RUN:-}
HN_NET=${HN_NET:-}

hn_log() {
    if declare -F lab_log > /dev/null; then lab_log "$@"; else printf 'netns: %s\n' "$*" >&2; fi
}
hn_die() {
    if declare -F lab_die > /dev/null; then lab_die "$@"; fi
    printf 'netns: FAILED: %s\n' "$*" >&2
    exit 1
}

hn_ns() { printf '%s%s' "$HN_PREFIX" "$1"; }
hn_sw() { hn_ns sw; }

hn_init() {
    HN_RUN=${1:?hn_init RUN NET}
    HN_NET=${2:?hn_init RUN NET}
    [ "$(id -u)" = 0 ] || hn_die "the namespace lab needs root"
    mkdir -p "$HN_RUN"
    chmod 0700 "$HN_RUN"
    [ -f "$HN_RUN/bmc.pass" ] || (umask 077 && head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$HN_RUN/bmc.pass")
    {
        echo "HN_RUN=$HN_RUN"
        echo "HN_NET=$HN_NET"
        echo "HN_PREFIX=$HN_PREFIX"
    } > "$HN_RUN/netns.env"
    touch "$HN_RUN/machines"
}

# Loads the run's settings (the chassis script: a new process).
hn__load() {
    HN_RUN=$1
    # shellcheck disable=SC1091
    . "$HN_RUN/netns.env"
}

hn_switch() {
    local sw
    sw=$(hn_sw)
    ip netns del "$sw" 2> /dev/null || true
    ip netns add "$sw" || hn_die "ip netns add $sw"
    ip -n "$sw" link set lo up
    echo "$sw" >> "$HN_RUN/namespaces"
    hn_bridge br0
}

# Another segment on the switch: bridge ${HN_PREFIX}BR.
hn_bridge() {
    local sw br=${HN_PREFIX}$1
    sw=$(hn_sw)
    ip -n "$sw" link add "$br" type bridge || hn_die "bridge $br in $sw"
    # No STP delay, no multicast snooping: ports forward at once.
    ip -n "$sw" link set "$br" type bridge forward_delay 0 stp_state 0 mcast_snooping 0 2> /dev/null || true
    ip -n "$sw" link set "$br" up
}

hn__mdir() { echo "$HN_RUN/$1"; }

hn_machine() {
    local name=$1 n=$2 d
    d=$(hn__mdir "$name")
    mkdir -p "$d"
    : > "$d/mounts"
    : > "$d/rc"
    {
        echo "HN_N=$n"
        echo "HN_BMC=${3:-}"
    } > "$d/machine.env"
    : > "$d/nics"
    [ "${4:-}" = nonic ] || echo "eth0 br0 $HN_NET.$n/24" > "$d/nics"
    grep -qx "$name" "$HN_RUN/machines" || echo "$name" >> "$HN_RUN/machines"
}

hn_nic() { echo "$2 $3 $4" >> "$(hn__mdir "$1")/nics"; }
hn_mount() { mkdir -p "$2" && printf 'bind %s %s\n' "$2" "$3" >> "$(hn__mdir "$1")/mounts"; }
hn_wipe() { mkdir -p "$2" && chmod "${4:-0755}" "$2" && printf 'wipe %s %s\n' "$2" "$3" >> "$(hn__mdir "$1")/mounts"; }
hn_copy() { printf 'file %s %s\n' "$2" "$3" >> "$(hn__mdir "$1")/mounts"; }
hn_rc() { printf '%s\n' "$2" > "$(hn__mdir "$1")/rc"; }

# A power-on is a boot: a new boot id in the node's own (wiped) /run, where
# its ha-node reads it (boot_id_path), so the agents' volatile state from
# before the cut is forgotten, as after a real reboot.
hn_rc_ha_node() { # NAME BIN TOML LOG [PRE]
    local t
    t=$(printf %q "$3")
    hn_rc "$1" "${5:+$5; }cat /proc/sys/kernel/random/uuid > /run/ha-boot-id
        sed -i -e '/^boot_id_path/d' -e '1i boot_id_path = \"/run/ha-boot-id\"' $t
        exec $(printf %q "$2") --config $t >> $(printf %q "$4") 2>&1"
}

hn_bins() { # RUN BIN...
    local run=$1
    shift
    mkdir -p "$run/bin" && cp "$@" "$run/bin/"
}

hn_clear_stale() { # NS...
    local ns p
    for ns in "$@"; do
        [ -e "/run/netns/$ns" ] || continue
        for p in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
        ip netns del "$ns" 2> /dev/null || true
    done
}

hn_powered() { [ -e "/run/netns/$(hn_ns "$1")" ]; }
hn_pids() { ip netns pids "$(hn_ns "$1")" 2> /dev/null || true; }
hn_in() {
    local ns
    ns=$(hn_ns "$1")
    shift
    ip netns exec "$ns" "$@"
}
hn_net_in() { hn_in "$@"; }
hn_holder() { cat "$(hn__mdir "$1")/holder.pid" 2> /dev/null; }
hn_enter() {
    local pid
    pid=$(hn_holder "$1") || return 1
    shift
    nsenter -t "$pid" -n -u -m -- "$@"
}

# The machine's link: namespace, eth0 (fixed MAC), veth onto the bridge.
hn__port() { # NAME IF: the switch-side end of the machine's IF
    if [ "$2" = eth0 ]; then echo "${HN_PREFIX}$1-p"; else echo "${HN_PREFIX}$1-p${2#eth}"; fi
}
hn__link() {
    local name=$1 ns sw n port ifname br cidr k=0
    ns=$(hn_ns "$name")
    sw=$(hn_sw)
    # shellcheck disable=SC1091
    n=$(. "$(hn__mdir "$name")/machine.env" && echo "$HN_N")
    ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
    while read -r ifname br cidr; do
        [ -n "$ifname" ] || continue
        port=$(hn__port "$name" "$ifname")
        ip -n "$sw" link del "$port" 2> /dev/null || true
        ip -n "$sw" link add "$port" type veth peer name "$ifname" netns "$ns" || return 1
        ip -n "$sw" link set "$port" master "${HN_PREFIX}$br" up || return 1
        ip -n "$ns" link set "$ifname" address "$(printf '52:54:00:14:%02x:%02x' "$k" "$n")"
        ip -n "$ns" addr add "$cidr" dev "$ifname"
        ip -n "$ns" link set "$ifname" up
        k=$((k + 1))
    done < "$(hn__mdir "$name")/nics"
}

# The holder: `ip netns exec` + unshare of UTS and mount namespaces; it
# sets the hostname, makes the mounts and sleeps; everything of the machine
# is entered through it (hn_enter).
hn__boot() {
    local name=$1 d kind src _
    d=$(hn__mdir "$name")
    rm -f "$d/holder.pid" "$d/holder.ready"
    while read -r kind src _; do
        [ "$kind" = wipe ] || continue
        case "$src" in "$HN_RUN"/*) ;; *) hn_die "refusing to wipe $src (outside the run dir)" ;; esac
        find "$src" -mindepth 1 -delete 2> /dev/null || true
    done < "$d/mounts"
    # shellcheck disable=SC2016
    setsid -f ip netns exec "$(hn_ns "$name")" unshare --uts --mount --propagation private -- bash -c '
        set -e
        d=$1 name=$2
        hostname "$name"
        while read -r kind src dst; do
            case "$kind" in
            bind | wipe) mkdir -p "$dst"; mount --bind "$src" "$dst" ;;
            file) mount --bind "$src" "$dst" ;;
            esac
        done < "$d/mounts"
        echo $$ > "$d/holder.pid.tmp"
        mv "$d/holder.pid.tmp" "$d/holder.pid"
        exec sleep infinity' hn-holder "$d" "$name" < /dev/null >> "$d/console.log" 2>&1
    for _ in $(seq 100); do
        [ -s "$d/holder.pid" ] && break
        sleep 0.05
    done
    [ -s "$d/holder.pid" ] || { hn_log "$name: holder did not start (see $d/console.log)"; return 1; }
    hn_run_rc "$name"
    echo "$(date -u +%T.%N | cut -c1-12) power on: booted" >> "$d/console.log"
    return 0
}

# Starts the machine's rc inside it, detached (power on does this).
hn_run_rc() {
    local d
    d=$(hn__mdir "$1")
    [ -s "$d/rc" ] || return 0
    nsenter -t "$(hn_holder "$1")" -n -u -m -- setsid -f bash "$d/rc" < /dev/null >> "$d/console.log" 2>&1
}

hn_power_on() {
    local name=$1
    hn_powered "$name" && return 0
    hn__link "$name" || { hn_log "$name: link setup failed"; return 1; }
    hn__boot "$name"
}

hn_power_off() {
    local name=$1 ns pids ifname _
    ns=$(hn_ns "$name")
    hn_powered "$name" || return 0
    for _ in $(seq 200); do
        pids=$(ip netns pids "$ns" 2> /dev/null | tr '\n' ' ')
        [ -z "${pids// /}" ] && break
        # shellcheck disable=SC2086
        kill -9 $pids 2> /dev/null || true
        sleep 0.02
    done
    pids=$(ip netns pids "$ns" 2> /dev/null | tr '\n' ' ')
    [ -z "${pids// /}" ] || hn_log "$name: still alive after SIGKILL: $pids"
    ip netns del "$ns" 2> /dev/null || true
    while read -r ifname _; do
        [ -n "$ifname" ] && { ip -n "$(hn_sw)" link del "$(hn__port "$name" "$ifname")" 2> /dev/null || true; }
    done < "$(hn__mdir "$name")/nics"
    rm -f "$(hn__mdir "$name")/holder.pid"
    echo "$(date -u +%T.%N | cut -c1-12) power off" >> "$(hn__mdir "$name")/console.log"
}

# ---------------------------------------------------------------- BMCs ---

hn__bmc_ip() {
    local n
    # shellcheck disable=SC1091
    n=$(. "$(hn__mdir "$1")/machine.env" && echo "$HN_N")
    echo "$HN_NET.$((200 + n))"
}
hn_bmc_ip() { hn__bmc_ip "$1"; }

hn_bmc_start() {
    local name=$1 d ip sw pass n
    d=$(hn__mdir "$name")/bmc
    mkdir -p "$d/state"
    chmod 0700 "$d"
    ip=$(hn__bmc_ip "$name")
    sw=$(hn_sw)
    ip -n "$sw" addr add "$ip/24" dev "${HN_PREFIX}br0" 2> /dev/null || true
    {
        echo '#!/bin/sh'
        echo "# BMC of $name: ipmi_sim's chassis_control."
        printf 'exec bash %q chassis %q %q "$@"\n' "$HN_LIB" "$HN_RUN" "$name"
    } > "$d/chassis.sh"
    chmod 0700 "$d/chassis.sh"
    printf 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nsel_enable 0x20 50 0x0a\nmc_enable 0x20\n' > "$d/bmc.emu"
    pass=$(cat "$HN_RUN/bmc.pass")
    # shellcheck disable=SC1091
    n=$(. "$(hn__mdir "$name")/machine.env" && echo "$HN_N")
    (
        umask 077
        cat > "$d/lan.conf" << EOF
name "${HN_PREFIX}bmc-$name"
set_working_mc 0x20
  startlan 1
    addr $ip 623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid $(printf '%032x' "$((200 + n))")
  endlan
  chassis_control "$d/chassis.sh 0x20"
  user 2 true "admin" "$pass" admin 10 none md2 md5 straight
EOF
    )
    # In the switch's network namespace, the root mount namespace: the
    # chassis script creates and deletes the machine's namespace.
    nsenter --net="/run/netns/$sw" -- setsid -f ipmi_sim -n -c "$d/lan.conf" -f "$d/bmc.emu" -s "$d/state" \
        < /dev/null > "$d/ipmi_sim.log" 2>&1
    for _ in $(seq 100); do
        hn_ipmi "$name" power status > /dev/null 2>&1 && break
        sleep 0.1
    done
    hn_ipmi "$name" power status > /dev/null 2>&1 || hn_die "$name's BMC (ipmi_sim on $ip) does not answer: $(tail -n 5 "$d/ipmi_sim.log")"
    pgrep -f "ipmi_sim -n -c $d/lan.conf" >> "$HN_RUN/bmc.pids" || true
}

hn_ipmi() {
    local name=$1
    shift
    IPMI_PASSWORD=$(cat "$HN_RUN/bmc.pass") nsenter --net="/run/netns/$(hn_sw)" -- \
        ipmitool -I lanplus -C 3 -H "$(hn__bmc_ip "$name")" -U admin -E -N 1 -R 2 chassis "$@"
}

# ipmi_sim: chassis.sh 0x20 get power | chassis.sh 0x20 set power 0|1 | set reset 1
hn__chassis() {
    local name=$1 op item value d
    d=$(hn__mdir "$name")
    shift
    shift # the MC address
    op=${1:-}
    shift || true
    case "$op" in
    get)
        for item in "$@"; do
            [ "$item" = power ] || continue
            value=0
            hn_powered "$name" && value=1
            echo "power:$value"
            echo "$(date +%s.%N) get power $value" >> "$d/bmc-calls.log"
        done
        ;;
    set)
        while [ $# -ge 2 ]; do
            item=$1 value=$2
            shift 2
            echo "$(date +%s.%N) set $item $value" >> "$d/bmc-calls.log"
            case "$item:$value" in
            power:0) hn_power_off "$name" ;;
            power:1) setsid -f bash "$HN_LIB" power-on "$HN_RUN" "$name" < /dev/null >> "$d/console.log" 2>&1 ;;
            reset:*)
                hn_power_off "$name"
                setsid -f bash "$HN_LIB" power-on "$HN_RUN" "$name" < /dev/null >> "$d/console.log" 2>&1
                ;;
            esac
        done
        ;;
    esac
    return 0
}

# ------------------------------------------------------------- cleanup ---

hn_cleanup() {
    [ -n "$HN_RUN" ] && [ -f "$HN_RUN/netns.env" ] || return 0
    local name pid ns
    while read -r pid; do
        [ -n "$pid" ] && kill "$pid" 2> /dev/null
    done < "$HN_RUN/bmc.pids" 2> /dev/null || true
    while read -r name; do
        [ -n "$name" ] && hn_power_off "$name"
    done < "$HN_RUN/machines"
    while read -r ns; do
        [ -n "$ns" ] || continue
        for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$pid" 2> /dev/null || true; done
        ip netns del "$ns" 2> /dev/null || true
    done < "$HN_RUN/namespaces" 2> /dev/null || true
    rm -f "$HN_RUN"/*/bmc/lan.conf
    : > "$HN_RUN/bmc.pids"
}

# As a program (the BMCs' chassis script, detached power on).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    case "${1:-}" in
    chassis)
        hn__load "$2"
        hn__chassis "$3" "${@:4}"
        ;;
    power-on)
        hn__load "$2"
        hn_power_on "$3"
        ;;
    *)
        echo "usage: netns.sh chassis RUN NAME ARGS... | power-on RUN NAME" >&2
        exit 2
        ;;
    esac
fi
