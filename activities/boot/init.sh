#!/bin/busybox sh
# init.sh: /init of the booted check's initramfs (busybox, the candidate's modules and userland).
# Loads the modules in modules.load order, compares userland and module versions, round-trips a pool
# on a file vdev, and prints "KZ: RESULT PASS" or "KZ: RESULT FAIL <why>" before powering off.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /tmp /run /etc
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
ln -sf /proc/self/mounts /etc/mtab
say() { echo "KZ: $*"; }
finish() { say "RESULT $*"; sync; poweroff -f; sleep 30; }
say "booted $(uname -r)"
K="$(uname -r)"
while read -r m; do
  if insmod "/lib/modules/$K/$m" > /tmp/err 2>&1; then
    say "insmod $m ok"
  else
    say "insmod $m failed: $(tr '\n' ' ' < /tmp/err)"
    dmesg | grep -iE 'spl|zfs|module|symbol|version|BUG|Oops' | tail -n 20 | sed 's/^/KZ-DMESG: /'
    finish "FAIL module $m did not load"
  fi
done < /modules.load
[ -e /dev/zfs ] || finish "FAIL module loaded but /dev/zfs is missing"
say "module-version $(cat /sys/module/zfs/version 2>/dev/null)"
# Userland and module must be the same release before a pool is trusted to them.
zfs version > /tmp/version 2>&1
sed 's/^/KZ-VERSION: /' /tmp/version
user="$(sed -n 's/^zfs-\([0-9][^ ]*\)$/\1/p' /tmp/version | head -n 1)"
kmod="$(sed -n 's/^zfs-kmod-\([0-9][^ ]*\)$/\1/p' /tmp/version | head -n 1)"
[ -n "$user" ] && [ "$user" = "$kmod" ] || finish "FAIL versions differ: userland zfs-$user, module zfs-kmod-$kmod"
run() {
  if "$@" > /tmp/out 2>&1; then return 0; fi
  say "$* failed: $(tr '\n' ' ' < /tmp/out)"
  dmesg | grep -iE 'spl|zfs|BUG|Oops' | tail -n 20 | sed 's/^/KZ-DMESG: /'
  finish "FAIL pool round-trip: $1 $2"
}
truncate -s 128M /tmp/vdev
run zpool create -f -o cachefile=none -m /tmp/tank tank /tmp/vdev
run zfs create tank/data
echo kinoite-zfs-probe > /tmp/tank/data/probe
run zpool export tank
run zpool import -o cachefile=none -d /tmp/vdev tank
[ "$(cat /tmp/tank/data/probe 2>/dev/null)" = kinoite-zfs-probe ] || finish "FAIL pool round-trip: the file written before export is not there after import"
say "pool round-trip ok"
run zpool destroy tank
finish "PASS zfs-$user"
