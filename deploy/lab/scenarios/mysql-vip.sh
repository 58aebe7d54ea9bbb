# shellcheck shell=bash
# mysql-vip (run by `scripts/lab.sh mysql-vip [--cuts N]`, lib.sh loaded):
# deploy/examples/mysql-vip.crm (MariaDB and its floating IP kept together)
# on a two-node ha-node cluster in network namespaces on this host, no VMs
# (deploy/lab/netns.sh): a bridge in the "switch" namespace hmsw, node1 and
# node2 each a namespace with its own hostname, /run, /tmp, /var/lib/mysql
# (its own datadir: the data is not replicated) and /var/log/mysql, a BMC
# each (ipmi_sim; power off SIGKILLs every process of the node's namespace
# and deletes it, power on boots it and starts its ha-node), a client
# namespace querying the VIP with `mariadb -h VIP` every 100 ms. A sampler
# checks every 100 ms, by the kernel (addresses in each node namespace, its
# process table), that the VIP and mysqld are active on at most one node.
# N times (default 5) the node serving is power-cut through its BMC; the
# survivor must fence it (fencing history in `hactl status --output json`),
# start MariaDB and the VIP, and the client's queries must succeed again
# through the same address; the victim comes back and rejoins; the next cut
# hits the other node. Last line:
#   mysql-vip: C power cuts, VIP answered again after median S s, queries failed during failover F, never served from two nodes
# Exit status non-zero on any failure, with the reason on stderr. Everything
# (namespaces, processes, BMCs) is removed at exit; logs stay in the run dir.
# Environment: HA_LAB_BIN (directory of ha-node and hactl, default
# ${CARGO_TARGET_DIR:-REPO/target}/release), HM_LAB_RUN (run dir, default
# /var/tmp/hm-mysql-vip-DATE-PID; not under /tmp: each node has its own /tmp).

# shellcheck source=SCRIPTDIR/../netns.sh
. "$LAB_DIR/netns.sh"

MV_DIR=$LAB_DIR/scenarios/mysql
export LC_NUMERIC=C # EPOCHREALTIME and awk: a decimal point
mv_cuts=5
while [ $# -gt 0 ]; do
    case "$1" in
    --cuts) mv_cuts=${2:?--cuts N}; shift 2 ;;
    --cuts=*) mv_cuts=${1#--cuts=}; shift ;;
    *) lab_die "mysql-vip: unknown argument '$1' (--cuts N)" ;;
    esac
done
case "$mv_cuts" in '' | *[!0-9]*) lab_die "--cuts wants a number, not '$mv_cuts'" ;; esac
[ "$LAB_KEEP" = 1 ] && lab_log "mysql-vip: --keep is not supported (namespaces are always removed); logs stay in the run dir"
[ "$(id -u)" = 0 ] || lab_die "mysql-vip needs root (network namespaces, mounts, apt-get)"

MV_BIN=${HA_LAB_BIN:-${CARGO_TARGET_DIR:-$LAB_REPO/target}/release}
HA_NODE=$MV_BIN/ha-node
HACTL_BIN=$MV_BIN/hactl
NET=10.214.14
VIP=$NET.100
NODES=(node1 node2)
declare -A NODE_N=([node1]=11 [node2]=12)
mv_t0=$SECONDS
step_t0=$SECONDS
step() {
    lab_log "step: $1 ($((SECONDS - step_t0)) s)"
    step_t0=$SECONDS
}
other() { if [ "$1" = node1 ]; then echo node2; else echo node1; fi; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# ------------------------------------------------------------- packages ---
mv_missing() {
    local cmd
    for cmd in mysqld_safe:mariadb-server mariadb:mariadb-client ipmi_sim:openipmi ipmitool:ipmitool \
        jq:jq nsenter:util-linux ip:iproute2 /usr/lib/ocf/resource.d/heartbeat/mysql:resource-agents \
        /bin/ping:iputils-ping; do
        case "${cmd%%:*}" in
        /*) [ -e "${cmd%%:*}" ] || echo "${cmd#*:}" ;;
        *) command -v "${cmd%%:*}" > /dev/null 2>&1 || echo "${cmd#*:}" ;;
        esac
    done | sort -u
}
mapfile -t mv_need < <(mv_missing)
if [ ${#mv_need[@]} -gt 0 ]; then
    lab_log "installing: ${mv_need[*]}"
    apt-get update -q > /dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${mv_need[@]}" > /dev/null 2>&1 \
        || lab_die "apt-get install ${mv_need[*]} failed"
    mapfile -t mv_need < <(mv_missing)
    [ ${#mv_need[@]} -eq 0 ] || lab_die "still missing after apt-get: ${mv_need[*]}"
    # The host's own MariaDB is not part of the lab: the nodes run theirs.
    if [ -d /run/systemd/system ]; then
        systemctl disable --now mariadb > /dev/null 2>&1 || true
    else
        if [ -x /etc/init.d/mariadb ]; then /etc/init.d/mariadb stop > /dev/null 2>&1 || true; fi
        update-rc.d mariadb disable > /dev/null 2>&1 || true
    fi
fi
# No mysqld of the host's own (root network namespace) may run: one left
# over from the package's postinst is stopped.
mv_root_mysqld() {
    local p me
    me=$(readlink /proc/self/ns/net)
    for p in $(pgrep -x 'mariadbd|mysqld' || true); do
        [ "$(readlink "/proc/$p/ns/net" 2> /dev/null)" = "$me" ] && echo "$p"
    done
    return 0
}
if [ -n "$(mv_root_mysqld)" ]; then
    lab_log "a mysqld runs in the host's namespace (pids $(mv_root_mysqld | tr '\n' ' ')): stopping the host's mariadb service"
    if [ -d /run/systemd/system ]; then systemctl disable --now mariadb > /dev/null 2>&1 || true; else /etc/init.d/mariadb stop > /dev/null 2>&1 || true; fi
    [ -z "$(mv_root_mysqld)" ] || lab_die "a mysqld still runs in the host's network namespace: stop it first"
fi
{ [ -x "$HA_NODE" ] && [ -x "$HACTL_BIN" ]; } || lab_die "no $HA_NODE / $HACTL_BIN: cargo build --release -p ha-node (or HA_LAB_BIN=DIR)"
[ -f /etc/mysql/my.cnf ] || lab_die "no /etc/mysql/my.cnf (mariadb-server's config; the nodes bind theirs on it)"

# ------------------------------------------------------------ lab setup ---
# One run of the namespace lab at a time (fixed names).
exec {mv_lock}> /run/hm-netns-lab.lock
flock -n "$mv_lock" || lab_die "another namespace lab run holds /run/hm-netns-lab.lock"
RUN=${HM_LAB_RUN:-/var/tmp/hm-mysql-vip-$(date +%Y%m%d-%H%M%S)-$$}
[ -e "$RUN/netns.env" ] && lab_die "$RUN holds another run"
hn_bins "$RUN" "$HA_NODE" "$HACTL_BIN" || lab_die "copy the binaries to $RUN/bin"
HA_NODE=$RUN/bin/ha-node
HACTL_BIN=$RUN/bin/hactl
hn_clear_stale hmsw hmnode1 hmnode2 hmclient
hn_init "$RUN" "$NET"
mv_bg_pids=()
mv_cleanup() {
    local rc=$? p
    for p in "${mv_bg_pids[@]}"; do kill "$p" 2> /dev/null || true; done
    hn_cleanup
    # Secrets and the datadirs go; logs stay.
    rm -f "$RUN/bmc.pass" "$RUN/db.pass" "$RUN/client.cnf" "$RUN/mysql-vip.crm"
    rm -rf "$RUN"/node*/mysql
    [ $rc = 0 ] || lab_log "mysql-vip: logs in $RUN (NAME/ha-node.log, NAME/console.log, NAME/log/error.log, client.log, sampler.log)"
    return $rc
}
trap mv_cleanup EXIT
trap 'exit 130' INT TERM
lab_log "run dir $RUN"
mv_fail() {
    local n
    for n in "${NODES[@]}"; do
        echo "=== $n: powered $(hn_powered "$n" && echo on || echo off); addresses:"
        ip -n "$(hn_ns "$n")" -o -4 addr 2> /dev/null || true
        echo "=== $n: ha-node.log (last 40 lines)"
        tail -n 40 "$RUN/$n/ha-node.log" 2> /dev/null || true
        echo "=== $n: hactl status"
        mv_hactl "$n" status 2>&1 || true
    done >&2
    echo "=== client.log (last 10)" >&2
    tail -n 10 "$RUN/client.log" >&2 2> /dev/null || true
    lab_die "mysql-vip: $*"
}

hn_switch
install -m 0644 "$MV_DIR/my.cnf" "$RUN/my.cnf"
for n in "${NODES[@]}"; do
    hn_machine "$n" "${NODE_N[$n]}" bmc
    hn_wipe "$n" "$RUN/$n/run" /run
    hn_wipe "$n" "$RUN/$n/tmp" /tmp 1777
    hn_mount "$n" "$RUN/$n/mysql" /var/lib/mysql
    hn_mount "$n" "$RUN/$n/log" /var/log/mysql
    hn_copy "$n" "$RUN/my.cnf" /etc/mysql/my.cnf
    chown mysql:mysql "$RUN/$n/mysql" "$RUN/$n/log"
    hn_power_on "$n" || lab_die "$n: power on"
    hn_bmc_start "$n"
done
hn_machine client 20
hn_power_on client || lab_die "client: power on"
step "namespaces: switch hmsw (bridge hmbr0), node1 node2 client, BMCs $(hn_bmc_ip node1) $(hn_bmc_ip node2)"

# --------------------------------------------------------------- MariaDB ---
# Each node's datadir, once, inside the node (its own /var/lib/mysql), and
# the client's user (allowed from the lab subnet), by a bootstrap server.
(umask 077 && head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/db.pass")
for n in "${NODES[@]}"; do
    hn_enter "$n" mariadb-install-db --defaults-file=/etc/mysql/my.cnf --datadir=/var/lib/mysql --user=mysql \
        --skip-test-db --auth-root-authentication-method=socket > "$RUN/$n/install-db.log" 2>&1 \
        || lab_die "$n: mariadb-install-db failed: $(tail -n 5 "$RUN/$n/install-db.log")"
    printf "FLUSH PRIVILEGES;\nCREATE USER 'hmclient'@'%s.%%' IDENTIFIED BY '%s';\nGRANT SELECT ON *.* TO 'hmclient'@'%s.%%';\n" \
        "$NET" "$(cat "$RUN/db.pass")" "$NET" \
        | hn_enter "$n" /usr/sbin/mariadbd --defaults-file=/etc/mysql/my.cnf --datadir=/var/lib/mysql --user=mysql \
            --bootstrap --log-error=/var/log/mysql/bootstrap.log > /dev/null 2>&1 \
        || lab_die "$n: creating the client user failed: $(tail -n 3 "$RUN/$n/log/bootstrap.log")"
done
(umask 077 && printf '[client]\nuser=hmclient\npassword=%s\n' "$(cat "$RUN/db.pass")" > "$RUN/client.cnf")
step "MariaDB datadirs (mariadb-install-db) and user hmclient@$NET.% on both nodes"

# --------------------------------------------------------------- cluster ---
# hactl init for node1, a token, hactl join for node2 (as an operator does);
# each ha-node runs inside its node (rc: started again at every power on).
out=$("$HACTL_BIN" init --name node1 --addr "$NET.11:7410" --data-dir "$RUN/node1/ha" 2>&1) \
    || lab_die "hactl init: $out"
fp=$(printf '%s\n' "$out" | awk '/CA fingerprint:/ {print $3}')
for n in "${NODES[@]}"; do
    hn_rc_ha_node "$n" "$HA_NODE" "$RUN/$n/ha/ha-node.toml" "$RUN/$n/ha-node.log"
done
# Admin client configs: both endpoints (own node first), and one per node.
mv_client_cfg() { # FILE ENDPOINT...
    local f=$1 e list=
    shift
    for e in "$@"; do list="$list${list:+, }\"$e:7410\""; done
    (umask 077 && printf 'endpoints = [%s]\n\n[tls]\nca = "%s"\ncert = "%s"\nkey = "%s"\n' "$list" \
        "$RUN/node1/ha/ca.pem" "$RUN/node1/ha/admin.pem" "$RUN/node1/ha/admin.key" > "$f")
}
mv_client_cfg "$RUN/hactl.toml" "$NET.11" "$NET.12"
mv_client_cfg "$RUN/hactl-node1.toml" "$NET.11"
mv_client_cfg "$RUN/hactl-node2.toml" "$NET.12"
# hactl from the switch namespace (the BMCs' segment: it reaches both nodes).
mv_hactl() { # NODE|all ARGS...
    local cfg=$RUN/hactl.toml
    [ "$1" = all ] || cfg=$RUN/hactl-$1.toml
    shift
    hn_net_in sw timeout 10 "$HACTL_BIN" --config "$cfg" "$@"
}
mv_json() { mv_hactl "$1" status --output json 2> /dev/null; }
mv_wait() { # SECS WHAT CMD...
    local limit=$1 what=$2 t0=$SECONDS
    shift 2
    until "$@" > /dev/null 2>&1; do
        [ $((SECONDS - t0)) -ge "$limit" ] && mv_fail "timed out after $limit s waiting for: $what"
        sleep 0.2
    done
}
hn_run_rc node1
mv_wait 60 "node1's first hactl status" mv_hactl node1 status
token=$(mv_hactl node1 token create --ttl 300) || lab_die "hactl token create failed"
# The single-use token goes to hactl join on stdin (`--token -`), not argv.
out=$(printf '%s\n' "$token" | hn_enter node2 "$HACTL_BIN" join --token - --name node2 --addr "$NET.12:7410" \
    --data-dir "$RUN/node2/ha" --ca-fingerprint "$fp" 2>&1) || lab_die "node2: hactl join failed: $out"
unset token
hn_run_rc node2
mv_two_online() {
    mv_json "${1:-all}" | jq -e '([.nodes[] | select(.voter == true and .state == "online")] | length) == 2 and .quorum == true' > /dev/null
}
mv_wait 90 "node1 and node2 online voters" mv_two_online
step "cluster: hactl init node1, token, hactl join node2, both online"

# --------------------------------------------------------- configuration ---
(
    umask 077
    pass=$(cat "$RUN/bmc.pass")
    sed "s/@BMC_PASS@/$pass/g" "$MV_DIR/mysql-vip.crm" > "$RUN/mysql-vip.crm"
)
grep -q '@BMC_' "$RUN/mysql-vip.crm" && lab_die "unfilled placeholder in the crm file"
out=$(mv_hactl all config load --dry-run "$RUN/mysql-vip.crm" 2>&1) || lab_die "config load --dry-run: $out"
out=$(mv_hactl all config load "$RUN/mysql-vip.crm" 2>&1) || lab_die "config load: $out"
printf '%s\n' "$out" | sed 's/^/config load: /' >&2
step "configuration loaded (scenarios/mysql/mysql-vip.crm)"

# ---------------------------------------------------------------- kernel ---
# What the kernel says: the VIP on a node's interfaces, mysqld in its
# process table.
has_vip() { ip -n "$(hn_ns "$1")" -o -4 addr show 2> /dev/null | grep -q " $VIP/"; }
has_mysqld() {
    local p c
    for p in $(ip netns pids "$(hn_ns "$1")" 2> /dev/null); do
        read -r c 2> /dev/null < "/proc/$p/comm" || continue
        case "$c" in mariadbd | mysqld) return 0 ;; esac
    done
    return 1
}
serving() { # the node with both, else empty
    local n
    for n in "${NODES[@]}"; do
        if has_vip "$n" && has_mysqld "$n"; then
            echo "$n"
            return 0
        fi
    done
}

# A line per change, with the time; any sample with the VIP or mysqld on two
# nodes goes to violations.
: > "$RUN/violations"
# The sampler: one sample every 100 ms (the next one 100 ms after the start
# of this one); sampler.alive: "SAMPLES FIRST LAST LONGEST_GAP_US".
(
    trap 'exit 0' TERM
    set +e # a sample of a namespace being deleted fails: the next one counts
    last='' count=0 first=$EPOCHREALTIME prev=${EPOCHREALTIME/./} gap=0
    while :; do
        t=${EPOCHREALTIME/./}
        [ $((t - prev)) -gt "$gap" ] && gap=$((t - prev))
        prev=$t
        s=
        for n in "${NODES[@]}"; do
            v=0 m=0
            has_vip "$n" && v=1
            has_mysqld "$n" && m=1
            s="$s $n:vip=$v,mysqld=$m"
        done
        if [ "$s" != "$last" ]; then
            echo "$EPOCHREALTIME$s"
            last=$s
        fi
        case "$s" in
        *vip=1*vip=1*) echo "$EPOCHREALTIME VIP on two nodes:$s" >> "$RUN/violations" ;;
        esac
        case "$s" in
        *mysqld=1*mysqld=1*) echo "$EPOCHREALTIME mysqld on two nodes:$s" >> "$RUN/violations" ;;
        esac
        count=$((count + 1))
        echo "$count $first $EPOCHREALTIME $gap" > "$RUN/sampler.alive"
        d=$((t + 100000 - ${EPOCHREALTIME/./}))
        if [ "$d" -gt 0 ]; then sleep "0.$(printf '%06d' "$d")"; fi
    done
) > "$RUN/sampler.log" 2>&1 &
mv_bg_pids+=($!)

mv_serving_now() { [ -n "$(serving)" ]; }
mv_wait 180 "mysqld and $VIP on one node" mv_serving_now
step "mysqld and $VIP on $(serving)"

# ---------------------------------------------------------------- client ---
# In the client namespace: `mariadb -h VIP` every 100 ms; one line per query:
# start end ok HOST | start end fail REASON.
rm -f "$RUN/client.stop"
cat > "$RUN/client.sh" << 'EOF'
run=$1 vip=$2
while [ ! -e "$run/client.stop" ]; do
    t0=$EPOCHREALTIME
    if out=$(timeout 5 mariadb --defaults-extra-file="$run/client.cnf" -h "$vip" --connect-timeout=1 -N -B \
        -e "SELECT @@hostname" 2>&1); then
        echo "$t0 $EPOCHREALTIME ok $out"
    else
        echo "$t0 $EPOCHREALTIME fail $(printf '%s' "$out" | tr '\n' ' ')"
    fi
    sleep 0.1
done
EOF
hn_in client bash "$RUN/client.sh" "$RUN" "$VIP" >> "$RUN/client.log" 2>&1 &
mv_bg_pids+=($!)
# The last K queries (default 10: about 1.5 s) all answered.
mv_client_ok() { tail -n "${1:-10}" "$RUN/client.log" 2> /dev/null | awk -v k="${1:-10}" '$3 == "ok" {n++} END {exit !(n == k)}'; }
mv_wait 60 "the client's first successful queries through $VIP" mv_client_ok 10
mv_first_ok=$(awk '$3 == "ok" {print $1; exit}' "$RUN/client.log")
step "client: queries through $VIP answered by $(tail -n 1 "$RUN/client.log" | awk '{print $4}')"

# ------------------------------------------------------------------ cuts ---
mv_fencings() { # SURVIVOR VICTIM: successful fencings of VICTIM by SURVIVOR in SURVIVOR's status
    mv_json "$1" | jq --arg t "$2" --arg o "$1" \
        '[.fencing_history[]? | select(.target == $t and .succeeded == true and .origin == $o)] | length' 2> /dev/null
}
# Settled: two online voters, nothing pending, ip and mysql placed.
mv_settled() {
    mv_json "${1:-all}" | jq -e '([.nodes[] | select(.voter == true and .state == "online")] | length) == 2
        and .quorum == true and .pending_count == 0' > /dev/null
}
mv_wait 60 "the cluster settled (nothing pending)" mv_settled
mv_s=()
mv_f=0
mv_windows=()
mv_notes=()
for ((cut = 1; cut <= mv_cuts; cut++)); do
    ct0=$SECONDS
    last_victim=${last_victim:-}
    victim=$(serving)
    [ -n "$victim" ] || mv_fail "cut $cut: nobody serves (VIP and mysqld on no node)"
    survivor=$(other "$victim")
    if [ "$cut" -gt 1 ] && [ "$victim" = "$last_victim" ]; then
        mv_fail "cut $cut: $victim serves again (it was cut last time and the survivor $survivor served): the cut would not go the other way"
    fi
    fenced_before=$(mv_fencings "$survivor" "$victim")
    [ -n "$fenced_before" ] || mv_fail "cut $cut: no status from $survivor before the cut"
    cut_t=$EPOCHREALTIME
    hn_ipmi "$victim" power off > /dev/null || mv_fail "cut $cut: power off of $victim through its BMC failed"
    cut_done=$EPOCHREALTIME
    hn_powered "$victim" && mv_fail "cut $cut: $victim still has its namespace after power off"
    [ -n "$(hn_pids "$victim")" ] && mv_fail "cut $cut: processes of $victim still alive after power off"
    lab_log "cut $cut: $victim powered off through its BMC (serving); $survivor must fence it and take over"
    # The survivor fences the victim through the victim's BMC.
    t=$SECONDS
    fenced=$fenced_before
    until [ "${fenced:-0}" -gt "$fenced_before" ] 2> /dev/null; do
        [ $((SECONDS - t)) -gt 60 ] && mv_fail "cut $cut: no new successful fencing of $victim in $survivor's hactl status --output json within 60 s ($fenced_before -> $fenced)"
        sleep 0.2
        fenced=$(mv_fencings "$survivor" "$victim")
    done
    fence_seen=$(calc "$EPOCHREALTIME - $cut_t")
    # The client's first successful query started after the cut, served by the survivor.
    first=
    t=$SECONDS
    while :; do
        first=$(awk -v t="$cut_t" -v s="$survivor" '$1 > t && $3 == "ok" && $4 == s {print $2; exit}' "$RUN/client.log")
        [ -n "$first" ] && break
        [ $((SECONDS - t)) -gt 90 ] && mv_fail "cut $cut: no successful query through $VIP served by $survivor within 90 s of the fencing"
        sleep 0.1
    done
    s=$(printf '%.2f' "$(calc "$first - $cut_t")")
    mv_s+=("$s")
    f=$(awk -v t="$cut_t" -v e="$first" '$1 > t && $1 < e && $3 == "fail"' "$RUN/client.log" | wc -l)
    mv_windows+=("$cut_t:$first")
    mv_f=$((mv_f + f))
    [ "$(serving)" = "$survivor" ] || mv_fail "cut $cut: the client is answered by $survivor but the kernel says the server is '$(serving)'"
    # Order on the survivor, by the sampler and the victim's BMC log: the
    # fencing (after the cut's own call, the BMC's first "get power 0" that
    # follows the survivor's "set power 0", i.e. the off read back) before
    # mysqld and the VIP appear on the survivor.
    fence_t=$(awk -v t="$cut_done" '$1 > t && $2 == "set" && $3 == "power" && $4 == "0" {off = 1}
        off && $2 == "get" && $3 == "power" && $4 == "0" {print $1; exit}' "$RUN/$victim/bmc-calls.log")
    my_t=$(awk -v t="$cut_t" -v n="$survivor:vip=[01],mysqld=1" '$1 > t && $0 ~ n {print $1; exit}' "$RUN/sampler.log")
    vip_t=$(awk -v t="$cut_t" -v n="$survivor:vip=1" '$1 > t && $0 ~ n {print $1; exit}' "$RUN/sampler.log")
    [ -n "$fence_t" ] || mv_fail "cut $cut: no fencing (power off, read back off) in $victim's BMC log after the cut"
    { [ -n "$my_t" ] && [ -n "$vip_t" ]; } || mv_fail "cut $cut: the sampler never saw mysqld and the VIP on $survivor"
    awk -v f="$fence_t" -v m="$my_t" -v v="$vip_t" 'BEGIN { exit !(m > f && v > f) }' \
        || mv_fail "cut $cut: mysqld ($my_t) or the VIP ($vip_t) started on $survivor before the BMC fenced $victim ($fence_t)"
    order="mysqld then VIP"
    awk -v m="$my_t" -v v="$vip_t" 'BEGIN { exit !(v < m) }' && order="VIP then mysqld"
    # The victim: fenced with stonith-action reboot, the BMC powered it on
    # again (its ha-node restarted in its namespace); if not, power it on.
    if ! hn_powered "$victim"; then
        sleep 1
        hn_powered "$victim" || { hn_ipmi "$victim" power on > /dev/null || mv_fail "cut $cut: power on $victim"; }
    fi
    mv_wait 120 "cut $cut: $victim rejoined (both online voters)" mv_two_online "$survivor"
    rejoin=$((SECONDS - ct0))
    mv_wait 60 "cut $cut: settled after $victim rejoined (nothing pending)" mv_settled "$survivor"
    mv_wait 30 "cut $cut: queries answered after $victim rejoined" mv_client_ok 10
    [ "$(serving)" = "$survivor" ] || lab_log "cut $cut: after $victim rejoined the server is '$(serving)'"
    note=$(printf 'cut %d: %s -> %s, fencing seen %.1f s, fenced %.2f s, mysqld %.2f s, VIP %.2f s after the cut (%s), answered again after %s s, %d failed queries, both online again %d s after the cut' \
        "$cut" "$victim" "$survivor" "$fence_seen" "$(calc "$fence_t - $cut_t")" "$(calc "$my_t - $cut_t")" \
        "$(calc "$vip_t - $cut_t")" "$order" "$s" "$f" "$rejoin")
    mv_notes+=("$note")
    if [ -s "$RUN/violations" ]; then
        head -n 5 "$RUN/violations" >&2
        mv_fail "cut $cut: served from two nodes at once ($(wc -l < "$RUN/violations") samples; $RUN/violations)"
    fi
    lab_log "$note ($((SECONDS - ct0)) s for the cut)"
    last_victim=$victim
done
step "$mv_cuts cuts"

# ----------------------------------------------------------------- check ---
touch "$RUN/client.stop"
sleep 0.5
read -r samples s_first s_last s_gap < "$RUN/sampler.alive" || mv_fail "no sampler state"
awk -v a="$s_last" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n - a < 2) }' || mv_fail "the sampler stopped sampling"
[ "$s_gap" -lt 1000000 ] || mv_fail "the sampler missed more than 1 s once (longest gap $((s_gap / 1000)) ms)"
changes=$(wc -l < "$RUN/sampler.log")
for n in "${mv_notes[@]}"; do lab_log "$n"; done
ok=$(awk -v t="$mv_first_ok" '$1 >= t && $3 == "ok"' "$RUN/client.log" | wc -l)
bad=$(awk -v t="$mv_first_ok" '$1 >= t && $3 == "fail"' "$RUN/client.log" | wc -l)
lab_log "client: $ok queries answered, $bad failed since the first answer ($mv_f during the failovers); sampler: $samples samples, one every $(calc "($s_last - $s_first) * 1000 / ($samples - 1)") ms (longest gap $((s_gap / 1000)) ms), $changes state changes; total $((SECONDS - mv_t0)) s"
if [ -s "$RUN/violations" ]; then
    head -n 5 "$RUN/violations" >&2
    mv_fail "served from two nodes at once ($(wc -l < "$RUN/violations") samples; $RUN/violations)"
fi
# A failure outside a failover (cut -> first answer) is a disruption no cut
# explains (e.g. a move when the victim rejoins).
outside=$(printf '%s\n' "${mv_windows[@]}" | awk -v t="$mv_first_ok" -v lf="$RUN/client.log" '
    { split($0, w, ":"); a[NR] = w[1]; b[NR] = w[2]; n = NR }
    END {
        while ((getline l < lf) > 0) {
            split(l, f, " ")
            if (f[1] < t || f[3] != "fail") continue
            inside = 0
            for (i = 1; i <= n; i++) if (f[1] > a[i] && f[1] < b[i]) inside = 1
            if (!inside) print l
        }
    }')
if [ -n "$outside" ]; then
    printf '%s\n' "$outside" | head -n 5 >&2
    mv_fail "$(printf '%s\n' "$outside" | wc -l) queries failed outside the failovers (first above; $RUN/client.log)"
fi
[ "${#mv_s[@]}" -ge "$mv_cuts" ] || mv_fail "only ${#mv_s[@]} of $mv_cuts cuts measured"
median=$(printf '%s\n' "${mv_s[@]}" | sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
lab_log "per-cut S: ${mv_s[*]} s"
echo "mysql-vip: ${#mv_s[@]} power cuts, VIP answered again after median $median s, queries failed during failover $mv_f, never served from two nodes"
