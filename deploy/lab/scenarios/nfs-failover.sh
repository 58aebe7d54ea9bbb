# shellcheck shell=bash
# nfs-failover (run by `scripts/lab.sh [--keep] nfs-failover [--cuts N]
# [--nfs-vers 3|4.2]`, lib.sh loaded): a two-node NFS + Samba server on DRBD
# under ha-node, set up the way an operator does it, with
# deploy/examples/nfs-samba-drbd.crm (lab changes listed at the top of
# scenarios/nfs/nfs-samba-drbd.crm). The client mounts the export through
# the floating address and appends fsync'd, numbered records; each
# acknowledged number goes to a file on the client's own disk. N times (default
# 5) the node serving NFS loses power (its QEMU killed through its BMC from
# the host); the survivor must fence it through the BMC, promote DRBD, mount,
# take the address and start nfsd and smbd; the victim is powered on again,
# rejoins and resyncs. At the end every acknowledged number must be in the
# file. Last line:
#   nfs-failover: C power cuts, W acknowledged writes, L lost, NFS back after median S s
# Rerun against a --keep run with HA_LAB_ATTACH=RUNDIR: the setup steps that
# are already done (cluster, DRBD metadata, configuration) are skipped.

NF_DIR=$LAB_DIR/scenarios/nfs
nf_cuts=5
nf_vers=3
while [ $# -gt 0 ]; do
    case "$1" in
    --cuts) nf_cuts=${2:?--cuts N}; shift 2 ;;
    --cuts=*) nf_cuts=${1#--cuts=}; shift ;;
    --nfs-vers) nf_vers=${2:?--nfs-vers 3|4.2}; shift 2 ;;
    --nfs-vers=*) nf_vers=${1#--nfs-vers=}; shift ;;
    *) lab_die "nfs-failover: unknown argument '$1' (--cuts N, --nfs-vers 3|4.2)" ;;
    esac
done
case "$nf_cuts" in '' | *[!0-9]*) lab_die "--cuts wants a number, not '$nf_cuts'" ;; esac

VIP=192.168.50.10
HACTL='hactl --config /root/hactl.toml'
nf_t0=$SECONDS
step_t0=$SECONDS
step() {
    lab_log "step: $1 ($((SECONDS - step_t0)) s)"
    step_t0=$SECONDS
}
other() { if [ "$1" = node1 ]; then echo node2; else echo node1; fi; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# Diagnostics for a failure: the last status and journal lines of every
# running node, DRBD's view, the client's writer.
nf_diag() {
    local g
    for g in node1 node2; do
        lab_running "$g" || { echo "=== $g: powered off"; continue; }
        echo "=== $g: hactl status"
        LAB_SSH_TIMEOUT=30 lab_ssh "$g" "$HACTL status" 2>&1 || true
        echo "=== $g: DRBD"
        LAB_SSH_TIMEOUT=20 lab_ssh "$g" 'cat /proc/drbd 2>&1; drbdadm role r0 2>&1; drbdadm dstate r0 2>&1' || true
        echo "=== $g: mounts, VIP, nfsd, smbd"
        LAB_SSH_TIMEOUT=20 lab_ssh "$g" "findmnt -n /mnt/store; findmnt -n /var/lib/nfs; ip -o -4 addr show dev eth1;
            cat /proc/fs/nfsd/threads 2>/dev/null; systemctl is-active nfs-server smbd" 2>&1 || true
        echo "=== $g: journal (ha-node, last 80 lines)"
        LAB_SSH_TIMEOUT=30 lab_ssh "$g" 'journalctl -u ha-node -n 80 --no-pager -o short-precise 2>/dev/null;
            tail -n 40 /var/lib/ha-node/ha-node.log 2>/dev/null' 2>&1 || true
        echo "=== $g: kernel (drbd, nfsd, last 30 lines)"
        LAB_SSH_TIMEOUT=20 lab_ssh "$g" 'dmesg | grep -Ei "drbd|nfsd|xfs" | tail -n 30' 2>&1 || true
    done
    if lab_running client; then
        echo "=== client: writer"
        LAB_SSH_TIMEOUT=20 lab_ssh client 'tail -n 3 /root/acked.txt; tail -n 20 /root/writer.log; dmesg | grep -i nfs | tail -n 10' 2>&1 || true
    fi
}
# Background: `hactl status` of a node that answers, every 5 s, into
# RUN/nfs-status.log (what the cluster showed when something went wrong).
nf_poller_pid=
nf_poll_start() {
    (
        while :; do
            for g in node1 node2; do
                lab_running "$g" || continue
                if out=$(LAB_SSH_TIMEOUT=15 lab_ssh "$g" "$HACTL status" 2> /dev/null); then
                    printf '=== %s (from %s)\n%s\n' "$(date -u +%T)" "$g" "$out"
                    break
                fi
            done
            sleep 5
        done
    ) >> "$LAB_RUN/nfs-status.log" 2>&1 &
    nf_poller_pid=$!
}
nf_poll_stop() {
    [ -n "$nf_poller_pid" ] && kill "$nf_poller_pid" 2> /dev/null
    nf_poller_pid=
    return 0
}
nf_fail() {
    nf_poll_stop
    nf_diag >&2
    local g
    for g in node1 node2; do
        lab_running "$g" && LAB_SSH_TIMEOUT=60 lab_ssh "$g" 'journalctl -u ha-node --no-pager -o short-precise' \
            > "$LAB_RUN/$g-ha-node.journal" 2>&1
    done
    lab_log "full ha-node journals: $LAB_RUN/NAME-ha-node.journal; status every 5 s: $LAB_RUN/nfs-status.log"
    lab_die "nfs-failover: $*"
}
# wait_for SECS WHAT NAME CMD: until CMD succeeds in NAME, else fail naming WHAT.
wait_for() {
    local limit=$1 what=$2 g=$3 cmd=$4 t0=$SECONDS
    until LAB_SSH_TIMEOUT=30 lab_ssh "$g" "$cmd" > /dev/null 2>&1; do
        [ $((SECONDS - t0)) -ge "$limit" ] && nf_fail "timed out after $limit s waiting for: $what ($g: $cmd)"
        sleep 2
    done
}
# The node that has the floating address (empty: none).
serving() {
    local g
    for g in node1 node2; do
        lab_running "$g" || continue
        if LAB_SSH_TIMEOUT=20 lab_ssh "$g" "ip -o -4 addr show dev eth1 | grep -q ' $VIP/'" 2> /dev/null; then
            echo "$g"
            return 0
        fi
    done
}
# Everything of the group runs on NAME, by the agents' own state.
SERVES='[ "$(drbdadm role r0)" = "${ROLE:-Primary/Secondary}" ] && mountpoint -q /mnt/store &&
    mountpoint -q /var/lib/nfs && ip -o -4 addr show dev eth1 | grep -q " '$VIP'/" &&
    [ "$(cat /proc/fs/nfsd/threads 2>/dev/null || echo 0)" -gt 0 ] && systemctl is-active -q smbd'
# fencings NODE TARGET: successful fencings of TARGET in NODE's status.
fencings() {
    LAB_SSH_TIMEOUT=30 lab_ssh "$1" "$HACTL status --output json" 2> /dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
print(sum(1 for e in v.get("fencing_history") or [] if e.get("target") == sys.argv[1] and e.get("succeeded") is True))
' "$2" 2> /dev/null || echo "?"
}
fence_last() { LAB_SSH_TIMEOUT=30 lab_ssh "$1" "$HACTL fence history" 2> /dev/null | head -n 1; }
acked() { LAB_SSH_TIMEOUT=20 lab_ssh client 'wc -l < /root/acked.txt' 2> /dev/null || echo -1; }

# ------------------------------------------------------------------ boot ---
[ -n "$LAB_RUN" ] || lab_build
lab_init
[ -x "$LAB_REPO/target/release/ha-node" ] || lab_die "build ha-node first: cargo build --release -p ha-node"
lab_boot node1 node2 client
step boot

# ----------------------------------------------------------- node setup ---
# Both nodes: DRBD handlers, the resource file, exports, samba share, the
# ha-node unit (started at boot: a power-cycled node rejoins by itself).
for g in node1 node2; do
    tar -C "$NF_DIR" -cf - r0.res ha-node.service exports smb-store.conf nfsdcld-partof.conf | lab_ssh_in "$g" 'set -e
        mkdir -p /root/nfs-lab && tar -xf - -C /root/nfs-lab && cd /root/nfs-lab
        cp r0.res /etc/drbd.d/r0.res
        cp ha-node.service /etc/systemd/system/ha-node.service
        cp exports /etc/exports
        mkdir -p /etc/systemd/system/nfsdcld.service.d
        cp nfsdcld-partof.conf /etc/systemd/system/nfsdcld.service.d/ha.conf
        ln -sf /opt/ha/ha-node /usr/local/sbin/ha-drbd-fence-peer
        ln -sf /opt/ha/ha-node /usr/local/sbin/ha-drbd-unfence-peer
        mkdir -p /etc/ha-node /mnt/store
        grep -q "^\[store\]" /etc/samba/smb.conf || cat smb-store.conf >> /etc/samba/smb.conf
        # The cluster runs them; on an attached run it may run them now.
        systemctl disable -q nfs-server smbd nmbd 2>/dev/null || true
        systemctl is-active -q ha-node || systemctl stop nfs-server smbd nmbd 2>/dev/null || true
        [ -x /etc/init.d/smbd ]
        systemctl daemon-reload
        sync' || lab_die "$g: DRBD handlers / exports / smb.conf / unit (or no /etc/init.d/smbd)"
done
step "node files (r0.res with fencing, handlers, exports, smb.conf, ha-node.service)"

# ------------------------------------------------------------------ DRBD ---
# Metadata on both, skip the initial sync, XFS with the nfs state dir and the
# export dir, then DRBD down: the cluster's ocf:linbit:drbd brings it up.
if lab_ssh node1 'test -f /root/.nfs-drbd-done'; then
    lab_log "DRBD already prepared (attached run)"
else
    for g in node1 node2; do
        lab_ssh "$g" 'modprobe drbd && yes yes | drbdadm create-md --force r0 > /dev/null 2>&1 && drbdadm up r0' \
            || lab_die "$g: drbdadm create-md/up"
    done
    wait_for 90 "DRBD r0 Connected" node1 '[ "$(drbdadm cstate r0)" = Connected ]'
    lab_ssh node1 'drbdadm -- --clear-bitmap new-current-uuid r0' || lab_die "new-current-uuid --clear-bitmap"
    wait_for 60 "DRBD r0 UpToDate/UpToDate" node1 '[ "$(drbdadm dstate r0)" = UpToDate/UpToDate ]'
    lab_ssh node1 'set -e
        drbdadm primary r0
        mkfs.xfs -q -f /dev/drbd0
        mount /dev/drbd0 /mnt/store
        mkdir -p /mnt/store/nfs /mnt/store/export
        cp -a /var/lib/nfs/. /mnt/store/nfs/
        chmod 0777 /mnt/store/export # not sticky: fs.protected_regular refuses O_CREAT of a file owned by another user (nobody, root_squash) in a sticky dir
        umount /mnt/store
        drbdadm secondary r0' || lab_die "node1: primary, mkfs.xfs, nfs + export dirs"
    for g in node1 node2; do lab_ssh "$g" 'drbdadm down r0' || lab_die "$g: drbdadm down"; done
    lab_ssh node1 'touch /root/.nfs-drbd-done'
fi
step "DRBD r0: metadata, XFS with nfs/ and export/, down"

# --------------------------------------------------------------- cluster ---
if lab_ssh node1 'test -f /var/lib/ha-node/ha-node.toml'; then
    lab_log "cluster already initialised (attached run)"
else
    out=$(lab_ssh node1 'hactl init --name node1 --addr 192.168.50.11:7410 --data-dir /var/lib/ha-node --start') \
        || lab_die "node1: hactl init failed: $out"
    printf '%s\n' "$out" | sed 's/^/node1: /' >&2
    fp=$(printf '%s\n' "$out" | awk '/CA fingerprint:/ {print $3}')
    lab_ssh node1 'ln -sf /var/lib/ha-node/ha-node.toml /etc/ha-node/ha-node.toml'
    wait_for 60 "node1's first hactl status" node1 'hactl --config /var/lib/ha-node/hactl.toml status'
    token=$(lab_ssh node1 'hactl --config /var/lib/ha-node/hactl.toml token create') || lab_die "token create failed"
    # The single-use token on stdin (`--token -`), not in node2's argv.
    out=$(printf '%s\n' "$token" | lab_ssh_in node2 "hactl join --token - --name node2 --addr 192.168.50.12:7410 \
        --data-dir /var/lib/ha-node --ca-fingerprint '$fp' --start") || lab_die "node2: hactl join failed: $out"
    unset token
    printf '%s\n' "$out" | sed 's/^/node2: /' >&2
    lab_ssh node2 'ln -sf /var/lib/ha-node/ha-node.toml /etc/ha-node/ha-node.toml'
fi
# The admin client config on both nodes, its own node first (hactl tries
# the endpoints in order; the other node may be powered off).
adm=$(lab_ssh node1 'cd /var/lib/ha-node && tar cf - ca.pem admin.pem admin.key | base64 -w0') || lab_die "read admin cert"
for g in node1 node2; do
    me=$(lab_ip "$g")
    peer=$(lab_ip "$(other "$g")")
    lab_ssh "$g" "set -e; umask 077; mkdir -p /etc/ha-node/admin; echo '$adm' | base64 -d | tar xf - -C /etc/ha-node/admin
        printf 'endpoints = [\"%s:7410\", \"%s:7410\"]\n\n[tls]\nca = \"/etc/ha-node/admin/ca.pem\"\ncert = \"/etc/ha-node/admin/admin.pem\"\nkey = \"/etc/ha-node/admin/admin.key\"\n' $me $peer > /root/hactl.toml
        sync # a power cut soon after leaves delayed-allocation files empty (seen: admin.pem 0 bytes)" \
        || lab_die "$g: admin client config"
done
# The daemon's timings for TCG guests: hactl init writes heartbeat 100 ms,
# election 400-800 ms, node timeout 1.6 s (tuned for real machines); here a
# guest stalls for 1-2 s under load (ha-node logged "this process was frozen"
# gaps of 0.6-1.5 s) and the peer was declared lost and fenced during the
# first start. NF_NODE_TIMEOUT_MS etc. override.
nf_timing="s/^heartbeat_ms = .*/heartbeat_ms = ${NF_HEARTBEAT_MS:-300}/
s/^election_timeout_min_ms = .*/election_timeout_min_ms = ${NF_ELECTION_MIN_MS:-1500}/
s/^election_timeout_max_ms = .*/election_timeout_max_ms = ${NF_ELECTION_MAX_MS:-3000}/
s/^node_timeout_ms = .*/node_timeout_ms = ${NF_NODE_TIMEOUT_MS:-6000}/"
# Run ha-node under systemd from now on (hactl --start ran it in the
# background): restarted on failure, started at boot.
for g in node1 node2; do
    lab_ssh "$g" "sed -i '$nf_timing' /var/lib/ha-node/ha-node.toml" || lab_die "$g: timings in ha-node.toml"
    lab_ssh "$g" 'systemctl is-active -q ha-node && exit 0
        systemctl enable -q ha-node
        p=$(pidof ha-node || true)
        if [ -n "$p" ]; then kill $p; for i in $(seq 50); do pidof ha-node > /dev/null || break; sleep 0.2; done; fi
        systemctl start ha-node' || lab_die "$g: systemctl start ha-node"
    wait_for 90 "$g: ha-node answers hactl status under systemd" "$g" "$HACTL status"
done
wait_for 120 "both nodes online in hactl status" node1 \
    "$HACTL status --output json | python3 -c 'import json,sys; v=json.load(sys.stdin); s={n[\"name\"]: n[\"state\"] for n in v[\"nodes\"]}; sys.exit(0 if s.get(\"node1\")==\"online\" and s.get(\"node2\")==\"online\" else 1)'"
step "cluster: hactl init on node1, token, hactl join on node2, ha-node.service on both"

# ---------------------------------------------------------- configuration ---
lab_copy node1 "$NF_DIR/nfs-samba-drbd.crm" /root/nfs.crm.in || lab_die "copy the crm file"
lab_ssh node1 "umask 077; python3 -c '
import shlex
env = {}
for line in open(\"/opt/ha/lab/lab.env\"):
    if \"=\" in line:
        k, v = line.strip().split(\"=\", 1)
        env[k] = \" \".join(shlex.split(v))
t = open(\"/root/nfs.crm.in\").read()
t = t.replace(\"@BMC_PASS@\", open(\"/opt/ha/lab/bmc.pass\").read().strip())
for n in (\"node1\", \"node2\"):
    t = t.replace(\"@BMC_PORT_%s@\" % n, env[\"LAB_BMC_%s_PORT\" % n])
assert \"@BMC_\" not in t, \"unfilled placeholder\"
open(\"/root/nfs.crm\", \"w\").write(t)
'" || lab_die "fill in the crm file"
out=$(lab_ssh node1 "$HACTL config load --dry-run /root/nfs.crm" 2>&1) || lab_die "config load --dry-run: $out"
printf '%s\n' "$out" | sed 's/^/dry-run: /' >&2
out=$(lab_ssh node1 "$HACTL config load /root/nfs.crm" 2>&1) || lab_die "config load: $out"
printf '%s\n' "$out" | sed 's/^/config load: /' >&2
step "configuration loaded"
nf_poll_start

wait_for 420 "store_serv running on node1 (DRBD Primary, XFS, nfs bind mount, VIP, nfsd, smbd)" node1 "$SERVES"
wait_for 120 "DRBD UpToDate/UpToDate on node1" node1 '[ "$(drbdadm dstate r0)" = UpToDate/UpToDate ]'
lab_ssh node1 "$HACTL status" >&2 || true
step "everything runs on node1"

# ---------------------------------------------------------------- client ---
lab_copy client "$NF_DIR/writer.py" /root/writer.py || lab_die "copy writer.py"
LAB_SSH_TIMEOUT=180 lab_ssh client "set -e; mkdir -p /mnt/nfs; mountpoint -q /mnt/nfs ||
    mount -t nfs -o hard,vers=$nf_vers,proto=tcp,timeo=20,retrans=2 $VIP:/mnt/store/export /mnt/nfs" \
    || nf_fail "client: NFS mount of $VIP:/mnt/store/export"
# The writer runs as a transient systemd unit: nothing of it holds the ssh
# session open.
nf_writer_start() {
    LAB_SSH_TIMEOUT=60 lab_ssh client "rm -f /root/writer.stop
        pgrep -f 'python3 /root/writer[.]py /mnt' > /dev/null && exit 0
        w=/root/writer.py
        systemd-run --quiet --collect --unit=nfs-writer-\$(date +%s) -p StandardOutput=append:/root/writer.log \
            -p StandardError=append:/root/writer.log \
            /usr/bin/python3 \$w /mnt/nfs/records.txt /root/acked.txt /root/writer.stop 0.1"
}
nf_writer_start || nf_fail "client: writer start"
t=$SECONDS
until [ "$(acked)" -gt 5 ]; do
    [ $((SECONDS - t)) -gt 60 ] && nf_fail "timed out waiting for the client's first acknowledged writes"
    sleep 1
done
step "client: NFS v$nf_vers mount through $VIP, writer running ($(acked) acknowledged)"

# ------------------------------------------------------------------ cuts ---
nf_s=()
nf_cut_secs=()
nf_notes=()
for ((cut = 1; cut <= nf_cuts; cut++)); do
    ct0=$SECONDS
    victim=$(serving)
    [ -n "$victim" ] || nf_fail "cut $cut: nobody has $VIP"
    survivor=$(other "$victim")
    before=$(acked)
    fenced_before=$(fencings "$survivor" "$victim")
    # Client clock minus host clock (ssh round trip midpoint).
    h0=$(now)
    c=$(lab_ssh client 'date +%s.%N')
    h1=$(now)
    offset=$(calc "$c - ($h0 + $h1) / 2")
    cut_h=$(now)
    lab_power "$victim" off > /dev/null || nf_fail "cut $cut: lab_power $victim off"
    for _ in $(seq 50); do lab_running "$victim" || break; sleep 0.2; done
    lab_running "$victim" && nf_fail "cut $cut: $victim's QEMU still runs 10 s after power off"
    cut_c=$(calc "$cut_h + $offset")
    lab_log "cut $cut: $victim powered off (serving; $before acknowledged); $survivor must take over"
    # As soon as the survivor has fenced the victim through its BMC, the
    # victim is powered on again (stonith-action=poweroff leaves it off): it
    # boots while the survivor takes over, rejoins by itself and resyncs.
    t=$SECONDS
    fenced=$fenced_before
    until [ "${fenced:-0}" -gt "${fenced_before:-0}" ] 2> /dev/null; do
        [ $((SECONDS - t)) -gt 300 ] \
            && nf_fail "cut $cut: no new successful fencing of $victim in $survivor's hactl status --output json within 300 s ($fenced_before -> $fenced)"
        sleep 1
        fenced=$(fencings "$survivor" "$victim")
    done
    fence_s=$((SECONDS - t))
    lab_log "cut $cut: $survivor fenced $victim about $fence_s s after the cut ($(fence_last "$survivor")); powering $victim on"
    lab_power "$victim" on > /dev/null || nf_fail "cut $cut: lab_power $victim on"
    # The client's first acknowledgement after the cut (1 s margin for the
    # clock offset and a write in flight at the cut).
    first=
    t=$SECONDS
    while :; do
        first=$(LAB_SSH_TIMEOUT=20 lab_ssh client "awk -v t=$cut_c '\$2 > t + 1 {print \$2; exit}' /root/acked.txt" 2> /dev/null || true)
        [ -n "$first" ] && break
        [ $((SECONDS - t)) -gt 400 ] && nf_fail "cut $cut: timed out after 400 s waiting for an acknowledged write after $victim's power cut"
        sleep 1
    done
    s=$(printf '%.1f' "$(calc "$first - $cut_c")")
    nf_s+=("$s")
    lab_log "cut $cut: NFS back after $s s"
    lab_wait_ssh "$victim" 400 > /dev/null || nf_fail "cut $cut: $victim's ssh not back 400 s after power on"
    wait_for 300 "cut $cut: $victim rejoined (ha-node online, DRBD UpToDate/UpToDate)" "$victim" \
        "systemctl is-active -q ha-node && [ \"\$(drbdadm dstate r0)\" = UpToDate/UpToDate ]"
    wait_for 120 "cut $cut: UpToDate/UpToDate on $survivor" "$survivor" '[ "$(drbdadm dstate r0)" = UpToDate/UpToDate ]'
    note="cut $cut: $victim -> $survivor, fenced after ~$fence_s s, S $s s"
    if [ "$victim" = node1 ]; then
        # cli-prefer-store_serv (+INF on node1) reaches DRBD's promotion
        # through the colocation with the Primary: as Pacemaker does, the
        # cluster demotes node2, promotes node1 and moves the group back.
        t=$SECONDS
        while [ "$(serving)" != node1 ] && [ $((SECONDS - t)) -lt "${NF_FAILBACK_WAIT:-300}" ]; do sleep 2; done
        if [ "$(serving)" = node1 ]; then
            wait_for 120 "cut $cut: failback, node1 serves" node1 "$SERVES"
            note="$note; failed back to node1 $((SECONDS - t)) s after both were UpToDate"
        else
            nf_fail "cut $cut: no failback to node1 within ${NF_FAILBACK_WAIT:-300} s of node1 being UpToDate (serving: $(serving)); Pacemaker fails back here (cli-prefer-store_serv +INF)"
        fi
    else
        ROLE_SURV='ROLE=Primary/Secondary; '
        wait_for 60 "cut $cut: $survivor serves (DRBD Primary, XFS, VIP, nfsd, smbd)" "$survivor" "$ROLE_SURV$SERVES"
    fi
    # Writes continue (through the failback, if any).
    a0=$(acked)
    t=$SECONDS
    until [ "$(acked)" -gt "$a0" ]; do
        [ $((SECONDS - t)) -gt 240 ] && nf_fail "cut $cut: no acknowledged write for 240 s after $victim rejoined"
        sleep 2
    done
    gap=$(LAB_SSH_TIMEOUT=30 lab_ssh client "awk -v t=$cut_c '\$2 > t + 1 { if (p && \$2 - p > g) g = \$2 - p } { p = \$2 } END { printf \"%.1f\", g }' /root/acked.txt" || echo '?')
    note="$note; longest write pause after the failover ${gap} s; $(acked) acknowledged"
    nf_cut_secs+=($((SECONDS - ct0)))
    nf_notes+=("$note")
    lab_log "$note ($((SECONDS - ct0)) s for the cut)"
done
step "$nf_cuts cuts"

# ----------------------------------------------------------------- check ---
nf_poll_stop
lab_ssh client 'touch /root/writer.stop; for i in $(seq 120); do pgrep -f "python3 /root/writer[.]py /mnt" > /dev/null || exit 0; sleep 0.5; done; exit 1' \
    || nf_fail "the writer did not stop within 60 s"
res=$(lab_ssh client 'python3 -c "
acked = [int(l.split()[0]) for l in open(\"/root/acked.txt\") if l.strip()]
have = set(int(l.split()[0]) for l in open(\"/mnt/nfs/records.txt\") if l.split() and l.split()[0].isdigit())
missing = sorted(set(acked) - have)
print(len(set(acked)), len(missing), \" \".join(map(str, missing[:20])))
"') || nf_fail "reading the records through the client mount"
read -r nf_w nf_l nf_missing <<< "$res"
server=$(serving)
[ -n "$server" ] && lab_ssh "$server" "$HACTL status" >&2
for n in "${nf_notes[@]}"; do lab_log "$n"; done
# The journals of a passing run too: where the time of each cut went.
for g in node1 node2; do
    lab_running "$g" && LAB_SSH_TIMEOUT=60 lab_ssh "$g" 'journalctl -u ha-node --no-pager -o short-precise' \
        > "$LAB_RUN/$g-ha-node.journal" 2>&1
done
lab_log "ha-node journals (this boot of each node): $LAB_RUN/NAME-ha-node.journal; status every 5 s: $LAB_RUN/nfs-status.log"

median=$(printf '%s\n' "${nf_s[@]}" | sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
lab_log "per-cut S: ${nf_s[*]} s; per-cut time: ${nf_cut_secs[*]} s; total $((SECONDS - nf_t0)) s"
[ "$nf_l" = 0 ] || lab_log "LOST acknowledged records (first 20): $nf_missing"
echo "nfs-failover: ${#nf_s[@]} power cuts, $nf_w acknowledged writes, $nf_l lost, NFS back after median $median s"
[ "$nf_l" = 0 ] || exit 1
[ "${#nf_s[@]}" -ge "$nf_cuts" ] || exit 1
