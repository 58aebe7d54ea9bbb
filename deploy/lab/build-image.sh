#!/bin/bash
# Build the lab's Debian 12 guest image into OUT (a fresh temporary
# directory; lib.sh renames it into the cache only when this succeeds).
#
#   build-image.sh OUT
#
# Produces in OUT: base.img (raw ext4, the root filesystem), vmlinuz,
# initrd.img (copied out of the image for -kernel/-initrd), lab_key and
# lab_key.pub (root's ssh key in every guest), packages.list (dpkg -l).
# Needs root, debootstrap and mke2fs. Mirror: $HA_LAB_MIRROR, else the
# host's Debian mirror from /etc/apt, else http://deb.debian.org/debian.
set -euo pipefail

out=${1:?usage: build-image.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
guest=$here/guest
suite=bookworm
img_size=${HA_LAB_IMG_SIZE:-4G}

log() { printf '[lab build %s] %s\n' "$(date +%T)" "$*" >&2; }

host_mirror() {
    local m
    m=$(grep -rhoE '^(URIs:|deb)\s+\S+/debian/?(\s|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -v security | awk '{print $2}' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
mirror=${HA_LAB_MIRROR:-$(host_mirror)}

pkgs=$(grep -vE '^\s*(#|$)' "$here/packages.txt" | tr -s ' \n' ',' | sed 's/,$//')
root=$out/rootfs
mkdir -p "$root"

log "debootstrap $suite from $mirror"
t0=$SECONDS
# Downloaded .debs are kept across builds ($HA_LAB_DEB_CACHE, set by lib.sh).
cache_opt=()
if [ -n "${HA_LAB_DEB_CACHE:-}" ]; then
    mkdir -p "$HA_LAB_DEB_CACHE"
    cache_opt=(--cache-dir="$(cd "$HA_LAB_DEB_CACHE" && pwd)")
fi
debootstrap --variant=minbase "${cache_opt[@]}" --include="$pkgs" "$suite" "$root" "$mirror" > "$out/debootstrap.log" 2>&1 || {
    tail -n 30 "$out/debootstrap.log" >&2
    exit 1
}
log "debootstrap done in $((SECONDS - t0)) s"

# --- configuration of the image ------------------------------------------
echo lab > "$root/etc/hostname"
install -m 0644 "$guest/hosts" "$root/etc/hosts"
install -m 0644 "$guest/fstab" "$root/etc/fstab"
install -m 0755 "$guest/lab-guest-init" "$root/usr/local/sbin/lab-guest-init"
install -m 0755 "$guest/lab-opt-ha" "$root/usr/local/sbin/lab-opt-ha"
install -m 0644 "$guest/lab-guest.service" "$root/etc/systemd/system/lab-guest.service"
install -m 0644 "$guest/lab-opt-ha.service" "$root/etc/systemd/system/lab-opt-ha.service"
mkdir -p "$root/opt/ha"
echo "nameserver 10.0.2.3" > "$root/etc/resolv.conf"

# Root: key-only ssh, empty password on the serial console (lab only).
ssh-keygen -q -t ed25519 -N '' -C ha-lab -f "$out/lab_key"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$out/lab_key.pub" "$root/root/.ssh/authorized_keys"
chroot "$root" passwd -d root > /dev/null
mkdir -p "$root/etc/ssh/sshd_config.d"
cat > "$root/etc/ssh/sshd_config.d/lab.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
GSSAPIAuthentication no
CONF

systemctl --root="$root" enable lab-guest.service lab-opt-ha.service ssh.service > /dev/null 2>&1
# Slow or pointless at boot in a lab guest.
systemctl --root="$root" mask \
    e2scrub_all.timer e2scrub_all.service e2scrub_reap.service \
    systemd-networkd-wait-online.service systemd-networkd.service \
    apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
    man-db.timer man-db.service fstrim.timer dpkg-db-backup.timer logrotate.timer \
    systemd-tmpfiles-clean.timer logd.service nfs-blkmap.service systemd-binfmt.service \
    rpc-statd-notify.service getty-static.service > /dev/null 2>&1 || true
# The cluster starts these itself.
systemctl --root="$root" disable nfs-server.service nfs-kernel-server.service smbd.service nmbd.service \
    samba-ad-dc.service drbd.service > /dev/null 2>&1 || true
systemctl --root="$root" mask samba-ad-dc.service > /dev/null 2>&1 || true
# Keep the journal in memory (faster, no fsck of journal files after a power cut).
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$root/etc/systemd/journald.conf.d/lab.conf"

# --- kernel, initrd, image -------------------------------------------------
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
cp "$kernel" "$out/vmlinuz"
cp "$initrd" "$out/initrd.img"
# A small initrd (virtio + ext4 only) boots faster under TCG than the
# MODULES=most one the kernel package made; that one stays as initrd-full.img.
cp "$out/initrd.img" "$out/initrd-full.img"
kver=${kernel##*/vmlinuz-}
rm -rf "$root/tmp/irconf"
cp -r "$root/etc/initramfs-tools" "$root/tmp/irconf"
sed -i 's/^MODULES=.*/MODULES=list/' "$root/tmp/irconf/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk virtio_net virtio_rng ext4 crc32c_generic > "$root/tmp/irconf/modules"
if chroot "$root" mkinitramfs -d /tmp/irconf -o /tmp/initrd-small.img "$kver" > "$out/mkinitramfs.log" 2>&1; then
    mv "$root/tmp/initrd-small.img" "$out/initrd.img"
    log "small initrd: $(du -h "$out/initrd.img" | cut -f1) (full: $(du -h "$out/initrd-full.img" | cut -f1))"
else
    log "small initrd failed (see mkinitramfs.log); using the full one"
fi
rm -rf "$root/tmp/irconf"
chroot "$root" dpkg -l > "$out/packages.list"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

log "mke2fs $img_size"
t0=$SECONDS
mke2fs -q -t ext4 -L labroot -d "$root" "$out/base.img" "$img_size" > /dev/null
log "mke2fs done in $((SECONDS - t0)) s"
rm -rf "$root"
log "image ready: $(du -sh "$out/base.img" | cut -f1) used, kernel $(basename "$kernel")"
