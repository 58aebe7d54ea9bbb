# shellcheck shell=bash
# VM lab library: Debian 12 guests under QEMU (TCG), one shared L2 segment,
# one simulated BMC (ipmi_sim) per node guest. Source it from bash:
#
#   . deploy/lab/lib.sh
#   lab_init [--keep]        # run dir, ports, exit trap (implicit in lab_boot)
#   lab_boot node1 node2 client
#   lab_ssh node1 'drbdadm status'
#
# Stable API (scenarios build on these names; keep them):
#   lab_build                  host packages + cached guest image (builds once)
#   lab_init [--keep]          create the run dir, pick free ports, install the
#                              EXIT trap (lab_down unless --keep / LAB_KEEP=1;
#                              a scenario's own EXIT trap must call lab__on_exit)
#   lab_add_bin FILE...        extra files for /opt/ha in the guests (before
#                              the first lab_boot; ha-node and hactl from
#                              target/release are added by default)
#   lab_boot NAME...           start the guests (in parallel), wait for ssh;
#                              prints "lab: NAME ssh up in N s" per guest;
#                              LAB_BOOT_SECONDS = wall time of the call
#   lab_start NAME             start the guest's QEMU, do not wait
#   lab_wait_ssh NAME [SECS]   wait until ssh answers (default 240 s); prints
#                              the seconds waited
#   lab_ssh NAME CMD...        run CMD (one shell string, like ssh) as root in
#                              the guest, under timeout ${LAB_SSH_TIMEOUT:-120}s;
#                              the exit code passes through (124: timed out,
#                              255: ssh failed)
#   lab_ssh_in NAME CMD...     lab_ssh with the caller's stdin passed through
#                              (lab_ssh reads /dev/null), e.g.
#                              lab_ssh_in node1 'cat > /etc/x.conf' < x.conf
#   lab_copy NAME SRC DST      host SRC -> guest DST (scp -r)
#   lab_fetch NAME SRC DST     guest SRC -> host DST
#   lab_power NAME on|off|status|cycle
#                              through the guest's BMC (ipmitool on the host);
#                              guests without a BMC: directly. status prints
#                              "on" or "off"; on does not wait for ssh
#                              (lab_wait_ssh NAME)
#   lab_running NAME           rc 0 if the guest's QEMU is alive
#   lab_qemu_pid NAME          the QEMU pid (empty if off)
#   lab_bmc_port NAME          UDP port of NAME's BMC on 127.0.0.1 (10.0.2.2
#                              from the guests)
#   lab_ssh_port NAME          host TCP port forwarded to NAME's sshd
#   lab_ip NAME                NAME's address on the lab segment (eth1)
#   lab_down                   kill every QEMU and ipmi_sim of this run, delete
#                              the disks (logs stay in the run dir)
#   lab_attach RUNDIR          use a run another shell started (--keep)
#   lab_log MSG / lab_die MSG  messages on stderr
#
# Guests: node1 192.168.50.11, node2 .12, client .20 (nodeN: .10+N); the
# floating address .10 is free for the cluster. Disks in a node guest:
# /dev/vda root (qcow2 overlay), /dev/vdb DRBD backing disk (raw,
# ${LAB_DRBD_SIZE}), /dev/vdc the per-run binaries (ext4 "habin", read-only,
# mounted at /opt/ha; its executables are linked into /usr/local/bin). The
# client has no DRBD disk (binaries on /dev/vdb). NICs: eth0 slirp (host
# loopback = 10.0.2.2), eth1 the shared segment 192.168.50.0/24.
# In every guest, /opt/ha/lab/lab.env (0600) has LAB_BMC_HOST, LAB_BMC_USER,
# LAB_BMC_<NAME>_PORT and /opt/ha/lab/bmc.pass (0600) the BMC password:
#   IPMI_PASSWORD=$(cat /opt/ha/lab/bmc.pass) ipmitool -I lanplus -C 3 \
#     -H 10.0.2.2 -p PORT -U admin -E chassis power status
#
# Environment: HA_LAB_CACHE (image cache, default REPO/.cache/lab),
# HA_LAB_RUN (run dir, default /tmp/ha-lab-DATE-PID), HA_LAB_GUESTS (the
# run's guest names, default "node1 node2 client"; nodeN get a BMC and a DRBD
# disk, fixed at lab_init), HA_LAB_INITRD=full, LAB_KEEP=1,
# LAB_SSH_TIMEOUT, LAB_MEM_NODE (512), LAB_MEM_CLIENT (384), LAB_DRBD_SIZE
# (512M), HA_LAB_MIRROR (Debian mirror for the build).

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(cd "$LAB_DIR/../.." && pwd)
LAB_CACHE=${HA_LAB_CACHE:-$LAB_REPO/.cache/lab}
LAB_MEM_NODE=${LAB_MEM_NODE:-512}
LAB_MEM_CLIENT=${LAB_MEM_CLIENT:-384}
LAB_DRBD_SIZE=${LAB_DRBD_SIZE:-512M}
LAB_BMC_USER=admin
LAB_KEEP=${LAB_KEEP:-0}
LAB_RUN=${LAB_RUN:-}
LAB_IMAGE=${LAB_IMAGE:-}
LAB_BIN_EXTRA=()

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() {
    printf 'lab: FAILED: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- build ---

lab__host_missing() {
    local cmd
    for cmd in qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap qemu-img:qemu-utils \
        ipmi_sim:openipmi ipmitool:ipmitool mke2fs:e2fsprogs ssh:openssh-client timeout:coreutils \
        ss:iproute2 flock:util-linux; do
        command -v "${cmd%%:*}" > /dev/null 2>&1 || echo "${cmd#*:}"
    done
}

lab__host_packages() {
    local need=() pkg round
    # Two rounds: installing one package can remove another (a backported
    # qemu-utils conflicts with bookworm's qemu-system-x86: apt removes it).
    for round in 1 2; do
        mapfile -t need < <(lab__host_missing)
        [ ${#need[@]} -eq 0 ] && return 0
        [ "$(id -u)" = 0 ] || lab_die "missing host packages (${need[*]}) and not root"
        lab_log "installing host packages: ${need[*]}"
        [ "$round" = 1 ] && { apt-get update -q > /dev/null 2>&1 || true; }
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" > /dev/null 2>&1; then
            for pkg in "${need[@]}"; do
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" > /dev/null 2>&1 \
                    || lab_die "apt-get install $pkg failed"
            done
        fi
    done
    mapfile -t need < <(lab__host_missing)
    [ ${#need[@]} -eq 0 ] || lab_die "host packages still missing after apt-get: ${need[*]}"
}

# Cache key: the package list, the build script and the files it puts into
# the image.
lab__image_key() {
    (cd "$LAB_DIR" && cat packages.txt build-image.sh guest/*) | sha256sum | cut -c1-16
}

lab_build() {
    lab__host_packages
    local key dir tmp t0=$SECONDS
    key=$(lab__image_key)
    dir=$LAB_CACHE/img-$key
    LAB_BUILD_SECONDS=0
    if [ ! -f "$dir/base.img" ]; then
        mkdir -p "$LAB_CACHE"
        # One builder at a time; a second lab_build waits, then finds it.
        exec {lab_lock_fd}> "$LAB_CACHE/.build.lock"
        flock "$lab_lock_fd"
        if [ ! -f "$dir/base.img" ]; then
            tmp=$(mktemp -d "$LAB_CACHE/.tmp-$key-XXXXXX")
            lab_log "building guest image $key (first time, a few minutes)"
            if ! HA_LAB_DEB_CACHE=$LAB_CACHE/debs "$LAB_DIR/build-image.sh" "$tmp"; then
                rm -rf "$tmp"
                flock -u "$lab_lock_fd"
                lab_die "image build failed (log above)"
            fi
            chmod 0444 "$tmp/base.img"
            chmod 0600 "$tmp/lab_key"
            mv "$tmp" "$dir" # complete images only: rename at the end
            LAB_BUILD_SECONDS=$((SECONDS - t0))
            lab_log "image built in $LAB_BUILD_SECONDS s: $dir"
        fi
        flock -u "$lab_lock_fd"
        exec {lab_lock_fd}>&-
    fi
    LAB_IMAGE=$dir
    export LAB_IMAGE
}

# ------------------------------------------------------------ run state ---

# A free port: TCP and UDP both unused, not handed out in this run yet.
lab__free_port() {
    local p used
    used=$(ss -Htuan 2>/dev/null | awk '{print $5}' | sed 's/.*://' | sort -u)
    while :; do
        p=$((20000 + RANDOM % 30000))
        grep -qx "$p" <<< "$used" && continue
        grep -qx "$p" "$LAB_RUN/ports.used" 2>/dev/null && continue
        echo "$p" >> "$LAB_RUN/ports.used"
        echo "$p"
        return 0
    done
}

lab__var() { # lab__var NAME FIELD -> value from the run's env file
    local v="LAB_${2}_${1//[^A-Za-z0-9]/_}"
    printf '%s' "${!v:-}"
}

lab_ip() {
    case "$1" in
    client) echo 192.168.50.20 ;;
    node[0-9]*) echo "192.168.50.$((10 + ${1#node}))" ;;
    *) lab_die "unknown guest $1 (node1, node2, ..., client)" ;;
    esac
}

lab__has_bmc() { [[ $1 == node[0-9]* ]]; }

lab_init() {
    [ "${1:-}" = --keep ] && LAB_KEEP=1
    [ -n "$LAB_RUN" ] && [ -f "$LAB_RUN/lab.env" ] && return 0
    [ -n "$LAB_IMAGE" ] || lab_build
    LAB_RUN=${HA_LAB_RUN:-/tmp/ha-lab-$(date +%Y%m%d-%H%M%S)-$$}
    [ -f "$LAB_RUN/lab.env" ] && lab_die "$LAB_RUN holds another run (lab_attach it, or pick a new HA_LAB_RUN)"
    mkdir -p "$LAB_RUN"
    chmod 0700 "$LAB_RUN"
    local g name
    {
        echo "LAB_RUN=$LAB_RUN"
        echo "LAB_IMAGE=$LAB_IMAGE"
        echo "LAB_GUESTS='${HA_LAB_GUESTS:-node1 node2 client}'"
        # One shared segment: a multicast group on the host's loopback,
        # random per run so parallel labs do not see each other.
        echo "LAB_MCAST=230.$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1)):$(lab__free_port)"
        for g in ${HA_LAB_GUESTS:-node1 node2 client}; do
            name=${g//[^A-Za-z0-9]/_}
            echo "LAB_SSH_$name=$(lab__free_port)"
            lab__has_bmc "$g" && echo "LAB_BMC_$name=$(lab__free_port)"
        done
    } > "$LAB_RUN/lab.env"
    # shellcheck disable=SC1091
    . "$LAB_RUN/lab.env"
    # The BMC password: never in argv, only in 0600 files.
    (umask 077 && head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$LAB_RUN/bmc.pass")
    trap 'lab__on_exit' EXIT
    trap 'exit 130' INT TERM
    lab_log "run dir $LAB_RUN"
}

lab_attach() {
    LAB_RUN=$(cd "${1:?lab_attach RUNDIR}" && pwd)
    # shellcheck disable=SC1091
    . "$LAB_RUN/lab.env"
}

lab__on_exit() {
    local rc=$?
    if [ "$LAB_KEEP" = 1 ]; then
        lab__print_access
    else
        lab_down
    fi
    return $rc
}

lab__print_access() {
    local g
    echo "lab: guests left running (--keep); run dir $LAB_RUN"
    for g in $LAB_GUESTS; do
        lab_running "$g" || continue
        echo "  ssh $(lab__ssh_opts "$g" | tr '\n' ' ')root@127.0.0.1   # $g"
    done
    echo "  or:   scripts/lab.sh ssh $LAB_RUN NAME [CMD]"
    echo "  stop: scripts/lab.sh down $LAB_RUN"
}

lab_ssh_port() { lab__var "$1" SSH; }
lab_bmc_port() { lab__var "$1" BMC; }

# ---------------------------------------------------------------- disks ---

lab_add_bin() {
    [ -f "$LAB_RUN/bin.img" ] && lab_die "lab_add_bin after the first boot"
    LAB_BIN_EXTRA+=("$@")
}

lab__bin_image() {
    [ -f "$LAB_RUN/bin.img" ] && return 0
    local d=$LAB_RUN/bin.d f g mb
    rm -rf "$d"
    mkdir -p "$d/lab"
    for f in "${CARGO_TARGET_DIR:-$LAB_REPO/target}/release/ha-node" "${CARGO_TARGET_DIR:-$LAB_REPO/target}/release/hactl"; do
        if [ ! -x "$f" ]; then
            lab_log "note: $f not built, not in /opt/ha"
        elif ! { command -v strip > /dev/null && strip -o "$d/${f##*/}" "$f" 2> /dev/null; }; then
            cp "$f" "$d/" # release binaries carry debug info: stripped when strip exists
        fi
    done
    for f in "${LAB_BIN_EXTRA[@]}"; do
        cp -r "$f" "$d/" || lab_die "lab_add_bin: cannot copy $f"
    done
    install -m 0600 "$LAB_RUN/bmc.pass" "$d/lab/bmc.pass"
    {
        echo "LAB_BMC_HOST=10.0.2.2"
        echo "LAB_BMC_USER=$LAB_BMC_USER"
        for g in $LAB_GUESTS; do
            lab__has_bmc "$g" && echo "LAB_BMC_${g//[^A-Za-z0-9]/_}_PORT=$(lab_bmc_port "$g")"
        done
    } > "$d/lab/lab.env"
    chmod 0600 "$d/lab/lab.env"
    mb=$(du -sm "$d" | cut -f1)
    mb=$((mb * 3 / 2 + 16))
    [ $mb -lt 64 ] && mb=64
    (umask 077 && mke2fs -q -t ext4 -L habin -d "$d" "$LAB_RUN/bin.img" "${mb}M" > /dev/null) || lab_die "mke2fs bin.img"
    rm -rf "$d"
}

# ---------------------------------------------------------------- guests ---

lab__gdir() { echo "$LAB_RUN/$1"; }

# Write GUESTDIR/start.sh (the QEMU command line) and the disks, once.
lab__prepare() {
    local g=$1 d mem ip last mac drbd=() bin initrd
    d=$(lab__gdir "$g")
    [ -x "$d/start.sh" ] && return 0
    mkdir -p "$d"
    lab__bin_image
    ip=$(lab_ip "$g")
    last=${ip##*.}
    mac=$(printf '52:54:00:50:00:%02x' "$last")
    qemu-img create -q -f qcow2 -b "$LAB_IMAGE/base.img" -F raw "$d/root.qcow2" || lab_die "qemu-img $g"
    if lab__has_bmc "$g"; then
        mem=$LAB_MEM_NODE
        truncate -s "$LAB_DRBD_SIZE" "$d/drbd.raw"
        drbd=(-drive "file=$d/drbd.raw,if=virtio,format=raw,cache=writeback")
    else
        mem=$LAB_MEM_CLIENT
    fi
    bin=(-drive "file=$LAB_RUN/bin.img,if=virtio,format=raw,readonly=on")
    initrd=$LAB_IMAGE/initrd.img # HA_LAB_INITRD=full: the kernel package's MODULES=most initrd
    [ "${HA_LAB_INITRD:-}" = full ] && [ -f "$LAB_IMAGE/initrd-full.img" ] && initrd=$LAB_IMAGE/initrd-full.img
    {
        echo '#!/bin/sh'
        echo "# Boot lab guest $g (used by lab_start and by its BMC's power on)."
        printf 'exec qemu-system-x86_64 -name %s -machine pc,accel=tcg -m %s -smp 1 -nodefaults -no-user-config \\\n' "$g" "$mem"
        printf '  -display none -monitor none -daemonize -pidfile %q \\\n' "$d/qemu.pid"
        printf '  -chardev file,id=ser,path=%q,append=on -serial chardev:ser \\\n' "$d/console.log"
        printf '  -qmp unix:%q,server=on,wait=off \\\n' "$d/qmp.sock"
        printf '  -kernel %q -initrd %q \\\n' "$LAB_IMAGE/vmlinuz" "$initrd"
        printf '  -append %q \\\n' "root=/dev/vda rw console=ttyS0 net.ifnames=0 loglevel=4 mitigations=off lab.node=$g lab.ip=$ip"
        printf '  -drive %q \\\n' "file=$d/root.qcow2,if=virtio,format=qcow2"
        [ ${#drbd[@]} -gt 0 ] && printf '  -drive %q \\\n' "${drbd[1]}"
        printf '  -drive %q \\\n' "${bin[1]}"
        printf '  -netdev user,id=up,hostfwd=tcp:127.0.0.1:%s-:22 -device virtio-net-pci,netdev=up \\\n' "$(lab_ssh_port "$g")"
        printf '  -netdev socket,id=lan,mcast=%s,localaddr=127.0.0.1 -device virtio-net-pci,netdev=lan,mac=%s \\\n' "$LAB_MCAST" "$mac"
        printf '  -device virtio-rng-pci\n'
    } > "$d/start.sh"
    chmod 0755 "$d/start.sh"
}

lab_qemu_pid() {
    local pid
    pid=$(cat "$(lab__gdir "$1")/qemu.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in *qemu-system*) ;; *) return 0 ;; esac
    case "$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" in Z | X | "") return 0 ;; esac
    echo "$pid"
}

lab_running() { [ -n "$(lab_qemu_pid "$1")" ]; }

lab_start() {
    local g=$1
    lab_init
    lab__prepare "$g"
    lab__has_bmc "$g" && lab__bmc_start "$g"
    lab_running "$g" && return 0
    "$(lab__gdir "$g")/start.sh" >> "$(lab__gdir "$g")/start.log" 2>&1 || {
        tail -n 5 "$(lab__gdir "$g")/start.log" >&2
        lab_die "QEMU for $g did not start"
    }
    date +%s > "$(lab__gdir "$g")/started.at"
}

lab__ssh_opts() {
    printf '%s\n' -i "$LAB_IMAGE/lab_key" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 \
        -p "$(lab_ssh_port "$1")"
}

lab_ssh() {
    local g=$1
    shift
    local opts
    mapfile -t opts < <(lab__ssh_opts "$g")
    timeout -k 5 "${LAB_SSH_TIMEOUT:-120}" ssh "${opts[@]}" root@127.0.0.1 -- "$@" < /dev/null
}

lab_ssh_in() {
    local g=$1
    shift
    local opts
    mapfile -t opts < <(lab__ssh_opts "$g")
    timeout -k 5 "${LAB_SSH_TIMEOUT:-120}" ssh "${opts[@]}" root@127.0.0.1 -- "$@"
}

lab__scp() {
    local g=$1 opts
    shift
    mapfile -t opts < <(lab__ssh_opts "$g")
    opts=("${opts[@]/#-p/-P}") # scp spells the port -P
    timeout -k 5 "${LAB_SSH_TIMEOUT:-120}" scp -q -r "${opts[@]}" "$@"
}
lab_copy() { lab__scp "$1" "$2" "root@127.0.0.1:$3"; }
lab_fetch() { lab__scp "$1" "root@127.0.0.1:$2" "$3"; }

lab_wait_ssh() {
    local g=$1 limit=${2:-240} t0=$SECONDS
    while ! LAB_SSH_TIMEOUT=15 lab_ssh "$g" true > /dev/null 2>&1; do
        if [ $((SECONDS - t0)) -ge "$limit" ]; then
            lab_log "$g: no ssh after $limit s; console tail:"
            tail -n 15 "$(lab__gdir "$g")/console.log" >&2
            return 1
        fi
        lab_running "$g" || {
            lab_log "$g: QEMU is not running"
            return 1
        }
        sleep 1
    done
    echo $((SECONDS - t0))
}

lab_boot() {
    local g t0=$SECONDS s
    lab_init
    for g in "$@"; do lab_start "$g"; done
    for g in "$@"; do
        s=$(lab_wait_ssh "$g") || lab_die "$g did not come up (console: $(lab__gdir "$g")/console.log)"
        lab_log "$g ssh up in $((SECONDS - t0)) s"
    done
    LAB_BOOT_SECONDS=$((SECONDS - t0))
}

# ------------------------------------------------------------------ BMCs ---

lab__bmc_start() {
    local g=$1 d port
    d=$(lab__gdir "$g")/bmc
    if [ -f "$d/ipmi_sim.pid" ] && kill -0 "$(cat "$d/ipmi_sim.pid")" 2>/dev/null; then return 0; fi
    port=$(lab_bmc_port "$g")
    mkdir -p "$d/state"
    chmod 0700 "$d"
    printf 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nsel_enable 0x20 50 0x0a\nmc_enable 0x20\n' > "$d/bmc.emu"
    (
        umask 077
        cat > "$d/lan.conf" << EOF
name "lab-$g"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $port
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid $(printf '%032x' "$port")
  endlan
  chassis_control "$LAB_DIR/chassis.sh $(lab__gdir "$g")"
  user 2 true "$LAB_BMC_USER" "$(cat "$LAB_RUN/bmc.pass")" admin 10 none md2 md5 straight
EOF
    )
    setsid ipmi_sim -n -c "$d/lan.conf" -f "$d/bmc.emu" -s "$d/state" < /dev/null > "$d/ipmi_sim.log" 2>&1 &
    echo $! > "$d/ipmi_sim.pid"
    local i
    for i in $(seq 50); do
        lab__ipmi "$g" chassis power status > /dev/null 2>&1 && return 0
        kill -0 "$(cat "$d/ipmi_sim.pid")" 2>/dev/null || lab_die "ipmi_sim for $g exited: $(cat "$d/ipmi_sim.log")"
        sleep 0.2
    done
    lab_die "BMC of $g does not answer on 127.0.0.1:$port"
}

lab__ipmi() { # host-side ipmitool against NAME's BMC; password from a 0600 file
    local g=$1
    shift
    timeout 30 ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$(lab_bmc_port "$g")" -U "$LAB_BMC_USER" \
        -f "$LAB_RUN/bmc.pass" -N 1 -R 3 "$@"
}

lab_power() {
    local g=$1 op=$2 out
    if lab__has_bmc "$g" && [ -f "$(lab__gdir "$g")/bmc/ipmi_sim.pid" ]; then
        case "$op" in
        status)
            out=$(lab__ipmi "$g" chassis power status) || return 1
            case "$out" in *" on"*) echo on ;; *) echo off ;; esac
            ;;
        on | off | cycle) lab__ipmi "$g" chassis power "$op" > /dev/null ;;
        *) lab_die "lab_power NAME on|off|status|cycle" ;;
        esac
    else
        case "$op" in
        status) if lab_running "$g"; then echo on; else echo off; fi ;;
        on) lab_start "$g" ;;
        off) "$LAB_DIR/chassis.sh" "$(lab__gdir "$g")" set power 0 ;;
        cycle) "$LAB_DIR/chassis.sh" "$(lab__gdir "$g")" set power 0 && lab_start "$g" ;;
        *) lab_die "lab_power NAME on|off|status|cycle" ;;
        esac
    fi
}

# ------------------------------------------------------------- teardown ---

lab_down() {
    [ -n "$LAB_RUN" ] && [ -d "$LAB_RUN" ] || return 0
    local g d pid
    for g in $LAB_GUESTS; do
        d=$(lab__gdir "$g")
        [ -d "$d" ] || continue
        pid=$(cat "$d/bmc/ipmi_sim.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
        rm -f "$d/bmc/ipmi_sim.pid"
        pid=$(lab_qemu_pid "$g")
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        rm -f "$d/qemu.pid"
    done
    for g in $LAB_GUESTS; do
        d=$(lab__gdir "$g")
        rm -f "$d/root.qcow2" "$d/drbd.raw" "$d/qmp.sock"
    done
    rm -f "$LAB_RUN/bin.img" "$LAB_RUN/bmc.pass" "$LAB_RUN"/*/bmc/lan.conf
    lab_log "down; logs in $LAB_RUN"
}
