# shellcheck shell=bash
# firewall-pair (run by `scripts/lab.sh firewall-pair [--moves M] [--cuts C]`,
# lib.sh loaded): deploy/examples/firewall-pair.crm (an opt-in cluster placing
# by the node attribute "firewall", conntrackd as a promotable clone, the
# inside and outside gateway addresses, two outside VIPs, an LSB service) on
# a two-node ha-node cluster in network namespaces (deploy/lab/netns.sh, no
# VMs). fw1 and fw2 each have eth0 on the inside segment (bridge hmlan,
# 198.51.0.0/16), eth1 on the outside one (hmwan, 203.0.113.176/29) and eth2
# on the cluster segment (hmbr0, 10.214.15.0/24: ha-node, conntrackd's sync,
# the BMCs). A sampler checks every 100 ms, by the kernel (the addresses of
# each node namespace, its process table), that no gateway address and no
# dnsmasq is on both nodes. M times (default 2) fw1's "firewall" attribute is
# set with crm_attribute (ha-node's, inside fw1: 10 moves the stack to fw2
# whose attribute is 50, 100 brings it back), C times (default 2; a cut
# after each move) the node holding the stack is power-cut through its BMC;
# each time the whole stack (lan-gw, net-gw, vip1, vip2 by the kernel,
# dnsmasq by the process table) must be on one node, nothing of it on the
# other, and conntrackd promoted there (hactl status). Last line:
#   firewall-pair: attribute moves M, power cuts C, stack moved whole every time, conntrackd promoted where the VIPs are
# Environment: HA_LAB_BIN (default ${CARGO_TARGET_DIR:-REPO/target}/release), HM_LAB_RUN (run dir,
# default /var/tmp/hm-firewall-pair-DATE-PID).

# shellcheck source=SCRIPTDIR/../netns.sh
. "$LAB_DIR/netns.sh"

FP_DIR=$LAB_DIR/scenarios/firewall
export LC_NUMERIC=C # EPOCHREALTIME and awk: a decimal point
fp_moves=2
fp_cuts=2
while [ $# -gt 0 ]; do
    case "$1" in
    --moves) fp_moves=${2:?--moves M}; shift 2 ;;
    --moves=*) fp_moves=${1#--moves=}; shift ;;
    --cuts) fp_cuts=${2:?--cuts C}; shift 2 ;;
    --cuts=*) fp_cuts=${1#--cuts=}; shift ;;
    *) lab_die "firewall-pair: unknown argument '$1' (--moves M, --cuts C)" ;;
    esac
done
case "$fp_moves$fp_cuts" in '' | *[!0-9]*) lab_die "--moves and --cuts want numbers" ;; esac
[ "$LAB_KEEP" = 1 ] && lab_log "firewall-pair: --keep is not supported (namespaces are always removed); logs stay in the run dir"
[ "$(id -u)" = 0 ] || lab_die "firewall-pair needs root (network namespaces, mounts, apt-get)"

FP_BIN=${HA_LAB_BIN:-${CARGO_TARGET_DIR:-$LAB_REPO/target}/release}
HA_NODE=$FP_BIN/ha-node
HACTL_BIN=$FP_BIN/hactl
NET=10.214.15
NODES=(fw1 fw2)
declare -A NODE_N=([fw1]=11 [fw2]=12)
# The stack's addresses (by the kernel) and service (by the process table).
STACK_IPS=(198.51.100.1 203.0.113.180 203.0.113.178 203.0.113.179)
fp_t0=$SECONDS
step_t0=$SECONDS
step() {
    lab_log "step: $1 ($((SECONDS - step_t0)) s)"
    step_t0=$SECONDS
}
other() { if [ "$1" = fw1 ]; then echo fw2; else echo fw1; fi; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# ------------------------------------------------------------- packages ---
fp_missing() {
    local cmd
    for cmd in conntrackd:conntrackd dnsmasq:dnsmasq ipmi_sim:openipmi ipmitool:ipmitool jq:jq \
        nsenter:util-linux ip:iproute2 /usr/lib/ocf/resource.d/heartbeat/conntrackd:resource-agents \
        /usr/lib/ocf/resource.d/heartbeat/IPaddr2:resource-agents; do
        case "${cmd%%:*}" in
        /*) [ -e "${cmd%%:*}" ] || echo "${cmd#*:}" ;;
        *) command -v "${cmd%%:*}" > /dev/null 2>&1 || echo "${cmd#*:}" ;;
        esac
    done | sort -u
}
mapfile -t fp_need < <(fp_missing)
if [ ${#fp_need[@]} -gt 0 ]; then
    lab_log "installing: ${fp_need[*]}"
    apt-get update -q > /dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${fp_need[@]}" > /dev/null 2>&1 \
        || lab_die "apt-get install ${fp_need[*]} failed"
    mapfile -t fp_need < <(fp_missing)
    [ ${#fp_need[@]} -eq 0 ] || lab_die "still missing after apt-get: ${fp_need[*]}"
    # The host's own dnsmasq and conntrackd are not part of the lab.
    for svc in dnsmasq conntrackd; do
        if [ -d /run/systemd/system ]; then
            systemctl disable --now "$svc" > /dev/null 2>&1 || true
        else
            if [ -x "/etc/init.d/$svc" ]; then "/etc/init.d/$svc" stop > /dev/null 2>&1 || true; fi
            update-rc.d "$svc" disable > /dev/null 2>&1 || true
        fi
    done
fi
{ [ -x "$HA_NODE" ] && [ -x "$HACTL_BIN" ]; } || lab_die "no $HA_NODE / $HACTL_BIN: cargo build --release -p ha-node (or HA_LAB_BIN=DIR)"
[ -f /etc/conntrackd/conntrackd.conf ] || lab_die "no /etc/conntrackd/conntrackd.conf (the nodes bind theirs on it)"
[ -x /etc/init.d/dnsmasq ] || lab_die "no /etc/init.d/dnsmasq"

# ------------------------------------------------------------ lab setup ---
exec {fp_lock}> /run/hm-netns-lab.lock
flock -n "$fp_lock" || lab_die "another namespace lab run holds /run/hm-netns-lab.lock"
RUN=${HM_LAB_RUN:-/var/tmp/hm-firewall-pair-$(date +%Y%m%d-%H%M%S)-$$}
[ -e "$RUN/netns.env" ] && lab_die "$RUN holds another run"
hn_bins "$RUN" "$HA_NODE" "$HACTL_BIN" || lab_die "copy the binaries to $RUN/bin"
HA_NODE=$RUN/bin/ha-node
HACTL_BIN=$RUN/bin/hactl
hn_clear_stale hmsw hmfw1 hmfw2
hn_init "$RUN" "$NET"
fp_bg_pids=()
fp_cleanup() {
    local rc=$? p
    for p in "${fp_bg_pids[@]}"; do kill "$p" 2> /dev/null || true; done
    hn_cleanup
    rm -f "$RUN/bmc.pass" "$RUN/firewall-pair.crm"
    [ $rc = 0 ] || lab_log "firewall-pair: logs in $RUN (NAME/ha-node.log, NAME/console.log, sampler.log)"
    return $rc
}
trap fp_cleanup EXIT
trap 'exit 130' INT TERM
lab_log "run dir $RUN"

fp_hactl() { # NODE|all ARGS...
    local cfg=$RUN/hactl.toml
    [ "$1" = all ] || cfg=$RUN/hactl-$1.toml
    shift
    hn_net_in sw timeout 10 "$HACTL_BIN" --config "$cfg" "$@"
}
fp_json() { fp_hactl "$1" status --output json 2> /dev/null; }
fp_fail() {
    local n
    for n in "${NODES[@]}"; do
        echo "=== $n: powered $(hn_powered "$n" && echo on || echo off); addresses:"
        ip -n "$(hn_ns "$n")" -o -4 addr 2> /dev/null || true
        echo "=== $n: ha-node.log (last 40 lines)"
        grep -v openraft "$RUN/$n/ha-node.log" 2> /dev/null | tail -n 40 || true
        echo "=== $n: hactl status"
        fp_hactl "$n" status 2>&1 || true
    done >&2
    lab_die "firewall-pair: $*"
}
fp_wait() { # SECS WHAT CMD...
    local limit=$1 what=$2 t0=$SECONDS
    shift 2
    until "$@" > /dev/null 2>&1; do
        [ $((SECONDS - t0)) -ge "$limit" ] && fp_fail "timed out after $limit s waiting for: $what"
        sleep 0.2
    done
}

hn_switch
hn_bridge lan
hn_bridge wan
for n in "${NODES[@]}"; do
    k=${NODE_N[$n]}
    hn_machine "$n" "$k" bmc nonic
    hn_nic "$n" eth0 lan "198.51.100.$k/16"
    hn_nic "$n" eth1 wan "203.0.113.$((170 + k))/29"
    hn_nic "$n" eth2 br0 "$NET.$k/24"
    hn_wipe "$n" "$RUN/$n/run" /run
    hn_wipe "$n" "$RUN/$n/tmp" /tmp 1777
    peer=$(other "$n")
    sed -e "s/@SELF@/$NET.$k/g" -e "s/@PEER@/$NET.${NODE_N[$peer]}/g" "$FP_DIR/conntrackd.conf" > "$RUN/$n/conntrackd.conf"
    chmod 0644 "$RUN/$n/conntrackd.conf"
    hn_copy "$n" "$RUN/$n/conntrackd.conf" /etc/conntrackd/conntrackd.conf
    hn_power_on "$n" || lab_die "$n: power on"
    hn_bmc_start "$n"
done
step "namespaces: switch hmsw (bridges hmlan, hmwan, hmbr0), fw1 fw2 (eth0 inside, eth1 outside, eth2 cluster), BMCs $(hn_bmc_ip fw1) $(hn_bmc_ip fw2)"

# --------------------------------------------------------------- cluster ---
out=$("$HACTL_BIN" init --name fw1 --addr "$NET.11:7410" --data-dir "$RUN/fw1/ha" 2>&1) || lab_die "hactl init: $out"
fp=$(printf '%s\n' "$out" | awk '/CA fingerprint:/ {print $3}')
for n in "${NODES[@]}"; do
    hn_rc "$n" "exec $(printf %q "$HA_NODE") --config $(printf %q "$RUN/$n/ha/ha-node.toml") >> $(printf %q "$RUN/$n/ha-node.log") 2>&1"
done
fp_client_cfg() { # FILE ENDPOINT...
    local f=$1 e list=
    shift
    for e in "$@"; do list="$list${list:+, }\"$e:7410\""; done
    (umask 077 && printf 'endpoints = [%s]\n\n[tls]\nca = "%s"\ncert = "%s"\nkey = "%s"\n' "$list" \
        "$RUN/fw1/ha/ca.pem" "$RUN/fw1/ha/admin.pem" "$RUN/fw1/ha/admin.key" > "$f")
}
fp_client_cfg "$RUN/hactl.toml" "$NET.11" "$NET.12"
fp_client_cfg "$RUN/hactl-fw1.toml" "$NET.11"
fp_client_cfg "$RUN/hactl-fw2.toml" "$NET.12"
hn_run_rc fw1
fp_wait 60 "fw1's first hactl status" fp_hactl fw1 status
token=$(fp_hactl fw1 token create --ttl 300) || lab_die "hactl token create failed"
# The single-use token goes to hactl join on stdin (`--token -`), not argv.
out=$(printf '%s\n' "$token" | hn_enter fw2 "$HACTL_BIN" join --token - --name fw2 --addr "$NET.12:7410" \
    --data-dir "$RUN/fw2/ha" --ca-fingerprint "$fp" 2>&1) || lab_die "fw2: hactl join failed: $out"
unset token
hn_run_rc fw2
# From now on a power on boots for FP_BOOT_DELAY s (default 15) before
# ha-node starts, as a real machine does: fenced with stonith-action reboot,
# the victim is powered on at once; without the boot time it is back before
# the survivor has started the stack.
for n in "${NODES[@]}"; do
    hn_rc_ha_node "$n" "$HA_NODE" "$RUN/$n/ha/ha-node.toml" "$RUN/$n/ha-node.log" "sleep ${FP_BOOT_DELAY:-15}"
done
fp_settled() {
    fp_json "${1:-all}" | jq -e '([.nodes[] | select(.voter == true and .state == "online")] | length) == 2
        and .quorum == true and .pending_count == 0' > /dev/null
}
fp_wait 90 "fw1 and fw2 online voters" fp_settled
step "cluster: hactl init fw1, token, hactl join fw2, both online"

(
    umask 077
    pass=$(cat "$RUN/bmc.pass")
    sed "s/@BMC_PASS@/$pass/g" "$FP_DIR/firewall-pair.crm" > "$RUN/firewall-pair.crm"
)
grep -q '@BMC_' "$RUN/firewall-pair.crm" && lab_die "unfilled placeholder in the crm file"
out=$(fp_hactl all config load --dry-run "$RUN/firewall-pair.crm" 2>&1) || lab_die "config load --dry-run: $out"
out=$(fp_hactl all config load "$RUN/firewall-pair.crm" 2>&1) || lab_die "config load: $out"
printf '%s\n' "$out" | sed 's/^/config load: /' >&2
step "configuration loaded (scenarios/firewall/firewall-pair.crm)"

# ---------------------------------------------------------------- kernel ---
fp_ips() { { ip -n "$(hn_ns "$1")" -o -4 addr show 2> /dev/null || true; } | awk '{print $4}' | cut -d/ -f1; }
# The daemons by their executable: argv[0] /usr/sbin/NAME. (Not by the
# command name alone: /etc/init.d/dnsmasq and the conntrackd agent run as
# shells whose command name is "dnsmasq" / "conntrackd" too.)
fp_daemons() { # NODE: " dnsmasq conntrackd " (those running in NODE's namespace)
    local p a0 out=' '
    for p in $(ip netns pids "$(hn_ns "$1")" 2> /dev/null); do
        IFS= read -r -d '' a0 2> /dev/null < "/proc/$p/cmdline" || [ -n "$a0" ] || continue
        case "$a0" in
        /usr/sbin/dnsmasq | dnsmasq) out="${out}dnsmasq " ;;
        /usr/sbin/conntrackd | conntrackd) out="${out}conntrackd " ;;
        esac
    done
    echo "$out"
}
fp_proc() { # NODE NAME: rc 0 if the daemon NAME runs in NODE's namespace
    [[ $(fp_daemons "$1") == *" $2 "* ]]
}
# "S D C": how many of the stack's addresses NODE has, dnsmasq 0/1, conntrackd 0/1.
fp_state() {
    local ips have=0 ip d=0 c=0
    ips=$(fp_ips "$1")
    for ip in "${STACK_IPS[@]}"; do grep -qx "$ip" <<< "$ips" && have=$((have + 1)); done
    fp_proc "$1" dnsmasq && d=1
    fp_proc "$1" conntrackd && c=1
    echo "$have $d $c"
}
# The promoted conntrackd instance's node(s), from the status.
fp_master() {
    fp_json "${1:-all}" | jq -r '[.resources | to_entries[] | select(.key | startswith("srv_conntrackd"))
        | .value | select((.role // "") | test("Promoted|Master")) | .nodes[]?] | sort | join(",")'
}
# The agent's own mark of the promoted instance (ha_pseudo_resource in
# HA_RSCTMP, which ha-node keeps under its data dir).
fp_master_mark() { [ -e "$RUN/$1/ha/data/agents/rsctmp/conntrackd.srv_conntrackd.master" ]; }
# The whole stack on NODE by the kernel, nothing of it on the other, and
# conntrackd promoted on NODE (status and the agent's mark) and running on
# every powered node (ARG3 "alone": the other is off, its disk not looked at).
fp_whole_on() {
    local n=$1 o s so
    o=$(other "$n")
    s=$(fp_state "$n")
    so=$(fp_state "$o")
    [ "${s% *}" = "4 1" ] || return 1
    case "$so" in "0 0 "*) ;; *) return 1 ;; esac
    [ "$(fp_master "${2:-all}")" = "$n" ] || return 1
    [ "${s##* }" = 1 ] || return 1
    fp_master_mark "$n" || return 1
    if [ "${3:-}" != alone ]; then
        hn_powered "$o" || return 1
        [ "${so##* }" = 1 ] || return 1
        fp_master_mark "$o" && return 1
    fi
    return 0
}

: > "$RUN/violations"
(
    trap 'exit 0' TERM
    set +e # a sample of a namespace being deleted fails: the next one counts
    last='' count=0 first=$EPOCHREALTIME prev=${EPOCHREALTIME/./} gap=0
    while :; do
        t=${EPOCHREALTIME/./}
        [ $((t - prev)) -gt "$gap" ] && gap=$((t - prev))
        prev=$t
        line=
        both=
        declare -A seen=()
        for n in "${NODES[@]}"; do
            ips=$'\n'$(ip -n "$(hn_ns "$n")" -o -4 addr show 2> /dev/null | awk '{sub("/.*", "", $4); print $4}')$'\n'
            s=
            for ip in "${STACK_IPS[@]}"; do
                if [[ $ips == *$'\n'"$ip"$'\n'* ]]; then
                    s="$s,$ip"
                    [ -n "${seen[$ip]:-}" ] && both="$both $ip"
                    seen[$ip]=1
                fi
            done
            comms=$(fp_daemons "$n")
            if [[ $comms == *" dnsmasq "* ]]; then
                s="$s,dnsmasq"
                [ -n "${seen[dnsmasq]:-}" ] && both="$both dnsmasq"
                seen[dnsmasq]=1
            fi
            [[ $comms == *" conntrackd "* ]] && s="$s,conntrackd"
            line="$line $n:${s#,}"
        done
        unset seen
        if [ "$line" != "$last" ]; then
            echo "$EPOCHREALTIME$line"
            last=$line
        fi
        [ -n "$both" ] && echo "$EPOCHREALTIME on both nodes:$both ($line)" >> "$RUN/violations"
        count=$((count + 1))
        echo "$count $first $EPOCHREALTIME $gap" > "$RUN/sampler.alive"
        d=$((t + 100000 - ${EPOCHREALTIME/./}))
        if [ "$d" -gt 0 ]; then sleep "0.$(printf '%06d' "$d")"; fi
    done
) > "$RUN/sampler.log" 2>&1 &
fp_bg_pids+=($!)

fp_check_violations() {
    if [ -s "$RUN/violations" ]; then
        head -n 5 "$RUN/violations" >&2
        fp_fail "$1: part of the stack on both nodes at once ($(wc -l < "$RUN/violations") samples; $RUN/violations)"
    fi
}
fp_wait 180 "the whole stack on fw1 (firewall 100 > 50), conntrackd promoted there" fp_whole_on fw1
fp_wait 60 "settled" fp_settled
step "stack on fw1: lan-gw, net-gw, vip1, vip2, dnsmasq, conntrackd promoted"

# ----------------------------------------------------------- moves, cuts ---
fp_holder() { # the node with the whole stack by the kernel, else empty
    local n
    for n in "${NODES[@]}"; do
        [ "$(fp_state "$n" | cut -d' ' -f1-2)" = "4 1" ] && echo "$n" && return 0
    done
    return 0
}
fp_attr=100 # fw1's firewall attribute (fw2's stays 50)
fp_expected() { if [ "$fp_attr" -gt 50 ]; then echo fw1; else echo fw2; fi; }
fp_notes=()
moves=0
cuts=0
round=0
while [ "$moves" -lt "$fp_moves" ] || [ "$cuts" -lt "$fp_cuts" ]; do
    round=$((round + 1))
    if [ "$moves" -lt "$fp_moves" ]; then
        from=$(fp_holder)
        if [ "$fp_attr" -gt 50 ]; then fp_attr=10; else fp_attr=100; fi
        to=$(fp_expected)
        t0=$EPOCHREALTIME
        hn_enter fw1 "$RUN/fw1/ha/data/sbin/crm_attribute" --node-config "$RUN/fw1/ha/ha-node.toml" \
            -N fw1 -n firewall -v "$fp_attr" -l forever > /dev/null 2>&1 \
            || fp_fail "move $((moves + 1)): crm_attribute -N fw1 -n firewall -v $fp_attr -l forever failed"
        v=$(hn_enter fw2 "$RUN/fw2/ha/data/sbin/crm_attribute" --node-config "$RUN/fw2/ha/ha-node.toml" \
            -N fw1 -n firewall -G -q -l forever 2> /dev/null) || true
        [ "$v" = "$fp_attr" ] || fp_fail "move $((moves + 1)): fw2's crm_attribute -G reads fw1's firewall as '$v', not $fp_attr"
        fp_wait 60 "move $((moves + 1)): the whole stack from $from to $to, conntrackd promoted there" fp_whole_on "$to"
        took=$(calc "$EPOCHREALTIME - $t0")
        fp_wait 60 "move $((moves + 1)): settled" fp_settled
        moves=$((moves + 1))
        note=$(printf 'move %d: fw1 firewall=%s: stack %s -> %s whole in %.1f s' "$moves" "$fp_attr" "$from" "$to" "$took")
        fp_notes+=("$note")
        lab_log "$note"
        fp_check_violations "move $moves"
    fi
    if [ "$cuts" -lt "$fp_cuts" ]; then
        victim=$(fp_holder)
        [ -n "$victim" ] || fp_fail "cut $((cuts + 1)): no node holds the whole stack"
        survivor=$(other "$victim")
        before=$(fp_json "$survivor" | jq --arg t "$victim" --arg o "$survivor" \
            '[.fencing_history[]? | select(.target == $t and .succeeded == true and .origin == $o)] | length')
        [ -n "$before" ] || fp_fail "cut $((cuts + 1)): no status from $survivor"
        t0=$EPOCHREALTIME
        hn_ipmi "$victim" power off > /dev/null || fp_fail "cut $((cuts + 1)): power off of $victim through its BMC failed"
        lab_log "cut $((cuts + 1)): $victim (holding the stack) powered off through its BMC; its agents' HA_RSCTMP on disk now: $(find "$RUN/$victim/ha/data/agents/rsctmp" -mindepth 1 -printf '%f ' 2> /dev/null)"
        fenced() {
            local c
            c=$(fp_json "$survivor" | jq --arg t "$victim" --arg o "$survivor" \
                '[.fencing_history[]? | select(.target == $t and .succeeded == true and .origin == $o)] | length')
            [ "${c:-0}" -gt "$before" ]
        }
        fp_wait 60 "cut $((cuts + 1)): $survivor fenced $victim (fencing history)" fenced
        fence_s=$(calc "$EPOCHREALTIME - $t0")
        # Fenced (reboot: powered on again at once); the stack on the
        # survivor, conntrackd promoted there; the victim back, online, its
        # conntrackd running again.
        fp_wait 60 "cut $((cuts + 1)): the whole stack on $survivor, conntrackd promoted there" fp_whole_on "$survivor" "$survivor" alone
        took=$(calc "$EPOCHREALTIME - $t0")
        if ! hn_powered "$victim"; then
            sleep 1
            hn_powered "$victim" || { hn_ipmi "$victim" power on > /dev/null || fp_fail "cut $((cuts + 1)): power on $victim"; }
        fi
        fp_wait $((120 + ${FP_BOOT_DELAY:-15})) "cut $((cuts + 1)): $victim rejoined, settled" fp_settled "$survivor"
        to=$(fp_expected)
        fp_wait 60 "cut $((cuts + 1)): after $victim rejoined, the whole stack on $to (fw1 firewall=$fp_attr, fw2 50)" fp_whole_on "$to"
        fp_wait 60 "cut $((cuts + 1)): settled" fp_settled
        back=$(calc "$EPOCHREALTIME - $t0")
        cuts=$((cuts + 1))
        note=$(printf 'cut %d: %s powered off: fenced by %s (seen %.1f s), stack whole on %s %.1f s after the cut; %s back and the stack whole on %s %.1f s after the cut' \
            "$cuts" "$victim" "$survivor" "$fence_s" "$survivor" "$took" "$victim" "$to" "$back")
        fp_notes+=("$note")
        lab_log "$note"
        fp_check_violations "cut $cuts"
    fi
done
step "$fp_moves moves, $fp_cuts cuts"

read -r samples s_first s_last s_gap < "$RUN/sampler.alive" || fp_fail "no sampler state"
awk -v a="$s_last" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n - a < 2) }' || fp_fail "the sampler stopped sampling"
[ "$s_gap" -lt 1000000 ] || fp_fail "the sampler missed more than 1 s once (longest gap $((s_gap / 1000)) ms)"
fp_check_violations "end"
for n in "${fp_notes[@]}"; do lab_log "$n"; done
lab_log "sampler: $samples samples, one every $(calc "($s_last - $s_first) * 1000 / ($samples - 1)") ms (longest gap $((s_gap / 1000)) ms), $(wc -l < "$RUN/sampler.log") state changes; total $((SECONDS - fp_t0)) s"
echo "firewall-pair: attribute moves $moves, power cuts $cuts, stack moved whole every time, conntrackd promoted where the VIPs are"
