# shellcheck shell=bash
# Lab smoke test (run by `scripts/lab.sh [--keep] smoke`, lib.sh loaded):
# boots node1, node2, client; DRBD 8.4 r0 on node1+node2 (primary node1,
# XFS, a file); the client reaches both nodes and a floating address that
# IPaddr2 moves from node1 to node2; node1 powers node2 off through node2's
# BMC (ipmitool and fence_ipmilan from inside the guest), the host checks
# node2's QEMU died, node1 powers it on, node2 comes back on the segment and
# DRBD reconnects.

step_t0=$SECONDS
step() { # step NAME: time since the previous step
    lab_log "step: $1 ($((SECONDS - step_t0)) s)"
    step_t0=$SECONDS
}
on_both() { lab_ssh node1 "$1" && lab_ssh node2 "$1"; }
# wait_for SECS NAME CMD: until CMD succeeds in NAME.
wait_for() {
    local limit=$1 g=$2 cmd=$3 t0=$SECONDS
    until LAB_SSH_TIMEOUT=20 lab_ssh "$g" "$cmd" > /dev/null 2>&1; do
        [ $((SECONDS - t0)) -ge "$limit" ] && lab_die "$g: '$cmd' not true after $limit s"
        sleep 1
    done
}

t=$SECONDS
[ -n "$LAB_RUN" ] || lab_build # not when attached to a running lab (HA_LAB_ATTACH)
build_s=$((SECONDS - t))
lab_init

t=$SECONDS
lab_boot node1 node2 client
boot_s=$((SECONDS - t))
step boot

for g in node1 node2 client; do
    [ "$(lab_ssh "$g" hostname)" = "$g" ] || lab_die "$g: wrong hostname"
done
if [ -x "$LAB_REPO/target/release/ha-node" ]; then
    lab_ssh node1 'command -v ha-node && command -v hactl' > /dev/null || lab_die "node1: ha-node/hactl not on PATH"
    lab_ssh node1 'ha-node --version || ha-node --help' > /dev/null 2>&1 || lab_log "note: ha-node --version/--help rc != 0 in the guest"
fi

# --- DRBD ------------------------------------------------------------------
t=$SECONDS
res=$(mktemp)
cat > "$res" <<'RES'
resource r0 {
    protocol C;
    device /dev/drbd0;
    disk /dev/vdb;
    meta-disk internal;
    on node1 { address 192.168.50.11:7789; }
    on node2 { address 192.168.50.12:7789; }
}
RES
for g in node1 node2; do lab_copy "$g" "$res" /etc/drbd.d/r0.res || lab_die "copy r0.res to $g"; done
rm -f "$res"
on_both 'modprobe drbd && grep -q "^version: 8.4" /proc/drbd' || lab_die "modprobe drbd / not DRBD 8.4"
on_both 'yes yes | drbdadm create-md --force r0 > /dev/null 2>&1 && drbdadm up r0' || lab_die "drbdadm create-md/up"
wait_for 60 node1 '[ "$(drbdadm cstate r0)" = Connected ]'
lab_ssh node1 'drbdadm -- --clear-bitmap new-current-uuid r0' || lab_die "new-current-uuid --clear-bitmap"
wait_for 30 node1 '[ "$(drbdadm dstate r0)" = UpToDate/UpToDate ]'
lab_ssh node1 'drbdadm primary r0 && mkfs.xfs -q -f /dev/drbd0 && mkdir -p /mnt/r0 && mount /dev/drbd0 /mnt/r0 &&
    echo lab-smoke > /mnt/r0/smoke.txt && sync && cat /mnt/r0/smoke.txt' | grep -qx lab-smoke \
    || lab_die "primary/mkfs.xfs/mount/write on node1"
drbd_s=$((SECONDS - t))
step "drbd up: $(lab_ssh node1 'drbdadm role r0; drbdadm dstate r0' | tr '\n' ' ')"

# --- segment: the client reaches both nodes and a moving floating IP ---
lab_ssh client 'ping -c 2 -W 3 192.168.50.11 > /dev/null && ping -c 2 -W 3 192.168.50.12 > /dev/null' \
    || lab_die "client cannot ping node1/node2 on the lab segment"
ipaddr2='OCF_ROOT=/usr/lib/ocf OCF_RESKEY_ip=192.168.50.10 OCF_RESKEY_cidr_netmask=24 OCF_RESKEY_nic=eth1 /usr/lib/ocf/resource.d/heartbeat/IPaddr2'
mac() { lab_ssh "$1" 'cat /sys/class/net/eth1/address'; }
lab_ssh node1 "$ipaddr2 start" > /dev/null 2>> "$LAB_RUN/ipaddr2.log" || lab_die "IPaddr2 start on node1"
lab_ssh client 'ping -c 2 -W 3 192.168.50.10 > /dev/null' || lab_die "client cannot reach the VIP on node1"
vip1=$(lab_ssh client 'ip neigh show 192.168.50.10' | awk '{print $5}')
lab_ssh node1 "$ipaddr2 stop" > /dev/null 2>> "$LAB_RUN/ipaddr2.log" || lab_die "IPaddr2 stop on node1"
lab_ssh node2 "$ipaddr2 start" > /dev/null 2>> "$LAB_RUN/ipaddr2.log" || lab_die "IPaddr2 start on node2"
lab_ssh client 'ping -c 2 -W 3 192.168.50.10 > /dev/null' || lab_die "client cannot reach the VIP on node2"
vip2=$(lab_ssh client 'ip neigh show 192.168.50.10' | awk '{print $5}')
[ "$vip1" = "$(mac node1)" ] && [ "$vip2" = "$(mac node2)" ] \
    || lab_die "VIP did not move: client saw $vip1 then $vip2 (node1 $(mac node1), node2 $(mac node2))"
lab_ssh node2 "$ipaddr2 stop" > /dev/null 2>> "$LAB_RUN/ipaddr2.log"
step "vip moved node1 -> node2 ($vip1 -> $vip2)"

# --- BMC: node1 powers node2 off and on --------------------------------
p2=$(lab_bmc_port node2)
ipmi="IPMI_PASSWORD=\$(cat /opt/ha/lab/bmc.pass) ipmitool -I lanplus -C 3 -H 10.0.2.2 -p $p2 -U admin -E chassis power"
fence="fence_ipmilan_stdin() { printf 'ip=10.0.2.2\nipport=$p2\nusername=admin\npassword=%s\nlanplus=1\ncipher=3\npower_wait=0\naction=%s\n' \"\$(cat /opt/ha/lab/bmc.pass)\" \"\$1\" | fence_ipmilan 2>/dev/null; }"
out=$(lab_ssh node1 "$ipmi status") || lab_die "ipmitool status from node1 failed"
[ "$out" = "Chassis Power is on" ] || lab_die "node2's BMC says '$out' while it runs"
has_fence=0
lab_ssh node1 'command -v fence_ipmilan' > /dev/null && has_fence=1
if [ $has_fence = 1 ]; then
    lab_ssh node1 "$fence; fence_ipmilan_stdin status" > /dev/null || lab_die "fence_ipmilan status (on) rc != 0"
fi
pid2=$(lab_qemu_pid node2)
t=$SECONDS
lab_ssh node1 "$ipmi off" > /dev/null || lab_die "ipmitool power off from node1 failed"
for _ in $(seq 50); do lab_running node2 || break; sleep 0.2; done
off_s=$((SECONDS - t))
lab_running node2 && lab_die "node2's QEMU (pid $pid2) still runs after power off"
grep -q "killed $pid2" "$LAB_RUN/node2/bmc-calls.log" || lab_die "the BMC did not kill QEMU pid $pid2"
[ "$(lab_power node2 status)" = off ] || lab_die "host-side BMC status is not off"
out=$(lab_ssh node1 "$ipmi status")
[ "$out" = "Chassis Power is off" ] || lab_die "node2's BMC says '$out' after power off"
if [ $has_fence = 1 ]; then
    rc=0
    lab_ssh node1 "$fence; fence_ipmilan_stdin status" > /dev/null || rc=$?
    [ $rc = 2 ] || lab_die "fence_ipmilan status (off) rc $rc, expected 2"
    lab_ssh node1 "$fence; fence_ipmilan_stdin on" > /dev/null || lab_die "fence_ipmilan on failed"
else
    lab_ssh node1 "$ipmi on" > /dev/null || lab_die "ipmitool power on from node1 failed"
fi
lab_running node2 || lab_die "node2's QEMU did not start on power on"
on_t=$SECONDS
lab_wait_ssh node2 > /dev/null || lab_die "node2 did not come back after power on"
power_s=$((SECONDS - t))
step "power cycle node2 through its BMC (fence_ipmilan: $has_fence; off incl. ssh from node1 ${off_s} s, power on -> ssh $((SECONDS - on_t)) s)"

# --- node2 rejoins the segment and DRBD -------------------------------------
lab_ssh client 'ping -c 2 -W 3 192.168.50.12 > /dev/null' || lab_die "client cannot ping node2 after its reboot"
lab_ssh node2 'modprobe drbd && drbdadm up r0' || lab_die "drbdadm up on node2 after reboot"
wait_for 60 node2 '[ "$(drbdadm cstate r0)" = Connected ] && [ "$(drbdadm dstate r0)" = UpToDate/UpToDate ]'
step "node2 back: $(lab_ssh node2 'drbdadm role r0; drbdadm cstate r0; drbdadm dstate r0' | tr '\n' ' ')"

echo "lab smoke: ok (build $build_s s, boot $boot_s s, drbd up $drbd_s s, power cycle $power_s s)"
