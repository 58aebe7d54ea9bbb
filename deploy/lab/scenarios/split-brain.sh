# shellcheck shell=bash
# split-brain (run by `scripts/lab.sh [--keep] split-brain`, lib.sh loaded):
# the nfs-failover setup with no power cut (it is run first, `--cuts 0`; or
# HA_LAB_ATTACH=RUNDIR of a kept nfs-failover run), then a DRBD split brain
# made on purpose, as an operator's mistake makes one: the cluster in
# maintenance mode, the replication link dropped on both nodes, node2 forced
# Primary with resource-level fencing off and written to while node1 goes on
# serving the client, the link back. DRBD refuses to reconnect (split brain);
# ha-node's watcher must show it with the recovery command, and
# `hactl drbd resolve r0 --discard-on node2 --wait 300` must bring r0 back to
# UpToDate/UpToDate from node1's data. Every write the client had
# acknowledged (served by node1) must be there; node2's writes are the ones
# thrown away. Last line:
#   split-brain: detected in D s, shown in status, resolved by hactl drbd resolve, L unexpected losses
# (L: acknowledged client writes lost; node2's 100 records, written on the
# discarded side, are the expected loss and are counted apart on the line
# before)

. "$LAB_DIR/scenarios/nfs-failover.sh" --cuts 0

sb_t0=$SECONDS
# nfs-failover stopped the client's writer at its end: start it again (it
# resumes after the last acknowledged number).
nf_writer_start || nf_fail "split-brain: restart the writer"
t=$SECONDS
a0=$(acked)
until [ "$(acked)" -gt "$a0" ]; do
    [ $((SECONDS - t)) -gt 60 ] && nf_fail "split-brain: the writer acknowledged nothing for 60 s after its restart"
    sleep 1
done
[ "$(serving)" = node1 ] || nf_fail "split-brain: node1 should serve before the split (serving: $(serving))"

# ------------------------------------------------------- maintenance mode ---
lab_ssh node1 "python3 -c '
t = open(\"/root/nfs.crm\").read()
open(\"/root/nfs-maint.crm\", \"w\").write(t + \"\nproperty maintenance-mode=true\n\")
'" || nf_fail "split-brain: write the maintenance configuration"
out=$(lab_ssh node1 "$HACTL config load /root/nfs-maint.crm" 2>&1) || nf_fail "split-brain: maintenance-mode on: $out"
lab_log "split-brain: maintenance-mode on ($out)"
sleep 5
step "maintenance mode"

# ------------------------------------------------------------- the split ---
for g in node1 node2; do
    lab_ssh "$g" 'drbdadm disconnect r0' || nf_fail "split-brain: $g: drbdadm disconnect"
done
# node2 takes over by hand, resource-level fencing off for it (the handler
# would outdate node1 or refuse): the operator's mistake.
lab_ssh node2 'set -e
    drbdadm disk-options --fencing=dont-care r0
    drbdadm primary --force r0
    mkdir -p /mnt/sb && mount /dev/drbd0 /mnt/sb
    python3 -c "
import os
with open(\"/mnt/sb/export/node2-only.txt\", \"w\") as f:
    for i in range(100):
        f.write(\"node2 %d\n\" % i)
    f.flush(); os.fsync(f.fileno())
"
    umount /mnt/sb
    drbdadm secondary r0' || nf_fail "split-brain: node2: primary --force, write, secondary"
before=$(acked)
sleep 5
[ "$(acked)" -gt "$before" ] || nf_fail "split-brain: node1 stopped serving writes during the split"
step "split: node2 wrote 100 records while node1 served the client ($(acked) acknowledged)"

# -------------------------------------------------------------- the join ---
sb_join=$SECONDS
for g in node2 node1; do
    lab_ssh "$g" 'drbdadm connect r0' || nf_fail "split-brain: $g: drbdadm connect"
done
t=$SECONDS
until LAB_SSH_TIMEOUT=30 lab_ssh node1 "$HACTL status --output json" 2> /dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
sys.exit(0 if any(d.get("split_brain") for d in v.get("drbd") or []) else 1)'; do
    [ $((SECONDS - t)) -gt 120 ] && nf_fail "split-brain: hactl status shows no split brain 120 s after the reconnect"
    sleep 1
done
sb_detect=$((SECONDS - sb_join))
lab_ssh node1 "$HACTL status" >&2 || true
step "split brain shown by hactl status after $sb_detect s"

# ------------------------------------------------------------ the repair ---
sb_fix=$SECONDS
out=$(lab_ssh node1 "$HACTL drbd resolve r0 --discard-on node2 --wait 300" 2>&1) || nf_fail "split-brain: hactl drbd resolve: $out"
printf '%s\n' "$out" | sed 's/^/resolve: /' >&2
wait_for 300 "split-brain: r0 UpToDate/UpToDate on node1 after the resolve" node1 '[ "$(drbdadm dstate r0)" = UpToDate/UpToDate ]'
sb_resolved=$((SECONDS - sb_fix))
lab_ssh node2 'drbdadm adjust r0' || nf_fail "split-brain: node2: drbdadm adjust (fencing back)"
out=$(lab_ssh node1 "$HACTL config load /root/nfs.crm" 2>&1) || nf_fail "split-brain: maintenance-mode off: $out"
step "resolved: UpToDate/UpToDate after $sb_resolved s; maintenance-mode off"

# ----------------------------------------------------------------- check ---
lab_ssh client 'touch /root/writer.stop; for i in $(seq 120); do pgrep -f "python3 /root/writer[.]py /mnt" > /dev/null || exit 0; sleep 0.5; done; exit 1' \
    || nf_fail "split-brain: the writer did not stop within 60 s"
res=$(lab_ssh client 'python3 -c "
acked = [int(l.split()[0]) for l in open(\"/root/acked.txt\") if l.strip()]
have = set(int(l.split()[0]) for l in open(\"/mnt/nfs/records.txt\") if l.split() and l.split()[0].isdigit())
print(len(set(acked)), len(set(acked) - have))
"') || nf_fail "split-brain: reading the records through the client mount"
read -r sb_w sb_l <<< "$res"
# node2's records were discarded: node1's data won, on both nodes.
kept=$(lab_ssh node1 'test -e /mnt/store/export/node2-only.txt && wc -l < /mnt/store/export/node2-only.txt || echo 0')
discarded=$((100 - kept))
wait_for 120 "split-brain: node1 serves again (maintenance off)" node1 "$SERVES"
lab_log "split-brain: total $((SECONDS - sb_t0)) s"
lab_log "split-brain: $sb_w acknowledged writes, $sb_l of them lost; node2's $discarded of 100 records discarded (the expected loss); UpToDate/UpToDate $sb_resolved s after hactl drbd resolve"
echo "split-brain: detected in $sb_detect s, shown in status, resolved by hactl drbd resolve, $sb_l unexpected losses"
[ "$sb_l" = 0 ] || exit 1
[ "$discarded" = 100 ] || exit 1
