#!/bin/sh
# collect.sh: runs INSIDE the candidate image (podman run --network=none <candidate@digest>) and copies
# what the booted check needs, from the candidate itself, into /out:
#   /out/vmlinuz                      the kernel (/usr/lib/modules/<kernel>/vmlinuz)
#   /out/root/lib/modules/<kernel>/…  zfs.ko and every module it depends on, per the image's modules.dep
#   /out/root/modules.load            those modules in load order (dependencies first)
#   /out/root/usr/sbin/{zpool,zfs}    the candidate's userland, with every library `ldd` lists
# Usage: collect.sh <kernel release>
set -eu
K="$1"
M="/usr/lib/modules/$K"
R=/out/root
fail() { printf 'kz-collect: %s\n' "$*" >&2; exit 3; }
[ -f "$M/vmlinuz" ] || fail "the candidate has no $M/vmlinuz for kernel $K"
[ -f "$M/modules.dep" ] || fail "the candidate has no $M/modules.dep for kernel $K (depmod did not run)"
cp "$M/vmlinuz" /out/vmlinuz
mkdir -p "$R/lib/modules/$K" "$R/etc"

# modules.dep: "<module>: <dep> <dep>…", dependencies listed so that the last must load first.
line="$(grep -E '^extra/zfs/zfs\.ko(\.[a-z]+)?:' "$M/modules.dep" || true)"
[ -n "$line" ] || fail "modules.dep of kernel $K lists no extra/zfs/zfs.ko"
zfs="${line%%:*}"
deps="${line#*:}"
order=""
for d in $deps; do order="$d $order"; done
: > "$R/modules.load"
for m in $order "$zfs"; do
  [ -f "$M/$m" ] || fail "modules.dep of kernel $K names $m, which the candidate does not have"
  base="${m%%.ko*}.ko"
  out="$R/lib/modules/$K/$base"
  mkdir -p "$(dirname "$out")"
  # busybox insmod reads plain .ko files: decompress with the candidate's own tools.
  case "$m" in
    *.ko) cp "$M/$m" "$out" ;;
    *.ko.xz) xz -dc "$M/$m" > "$out" ;;
    *.ko.zst) zstd -qdc "$M/$m" > "$out" ;;
    *.ko.gz) gzip -dc "$M/$m" > "$out" ;;
    *) fail "unknown module file $m" ;;
  esac
  printf '%s\n' "$base" >> "$R/modules.load"
done

for bin in /usr/sbin/zpool /usr/sbin/zfs; do
  [ -x "$bin" ] || fail "the candidate has no $bin"
  mkdir -p "$R/usr/sbin"
  cp "$bin" "$R$bin"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
done
if [ -f /etc/ld.so.cache ]; then cp /etc/ld.so.cache "$R/etc/ld.so.cache"; fi
echo "kz-collect: kernel $K: $(tr '\n' ' ' < "$R/modules.load")"
