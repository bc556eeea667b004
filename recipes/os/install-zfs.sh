#!/bin/sh
# install-zfs.sh: compose-time ZFS install, run INSIDE the OS image build (Containerfile RUN step).
#
# Usage: install-zfs.sh <rpm-dir>
#   <rpm-dir> holds the akmods cache RPMs (/rpms/kmods/zfs of the akmods image, bind-mounted read-only):
#     kmod-zfs-<kernel>-<zfsver>-<rel>.<arch>.rpm  one per kernel, RPM Name kmod-zfs,
#                                                  holding /usr/lib/modules/<kernel>/extra/zfs/zfs.ko
#     zfs-<zfsver>-<rel>.<arch>.rpm (+ libzfs*, ...) userspace, shared by all kernels
#
# This is the authoritative compose-time check: the image gets ZFS for EVERY kernel it ships, or the
# build fails. Steps follow the original pipeline (reference S8, steps 1-12); steps 2, 4 and 5 (derive
# the akmods ref, skopeo copy, unpack layers) are replaced by the Containerfile's bind mount of the
# akmods image, which keeps the RPMs out of every layer and needs no registry access from the build.
#
# Real Kinoite has rpm-ostree: userspace + the primary kernel's kmod go through `rpm-ostree install`.
# The hermetic test base has no rpm-ostree: `rpm -i --nodeps` (its rpm database knows no Fedora packages).
set -eu

log() { printf 'install-zfs: %s\n' "$*"; }
fail() { printf 'install-zfs: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$#" -eq 1 ] || fail "usage: install-zfs.sh <rpm-dir>  (the akmods image's /rpms/kmods/zfs)"
RPM_DIR="$1"
# Set by the Containerfile (also keys the layer cache); informational here.
log "akmods image: ${KINOITE_ZFS_AKMODS_IMAGE:-<not given>}; RPMs from $RPM_DIR"
[ -d "$RPM_DIR" ] || fail "RPM folder $RPM_DIR does not exist; check that the akmods image holds /rpms/kmods/zfs."

# ---- 1. required commands --------------------------------------------------------------------------
for cmd in rpm depmod sort; do
  command -v "$cmd" >/dev/null 2>&1 || fail "Required command is not available: $cmd"
done
if command -v rpm-ostree >/dev/null 2>&1; then HAVE_RPM_OSTREE=1; else HAVE_RPM_OSTREE=0; fi

WORK="$(mktemp -d /tmp/install-zfs.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 1' HUP INT TERM

# ---- 3. image kernels (natural sort; the last one is the newest = primary) ---------------------------
MODULES_ROOT=/usr/lib/modules
: > "$WORK/kernels"
if [ -d "$MODULES_ROOT" ]; then
  for d in "$MODULES_ROOT"/*; do
    [ -d "$d" ] || continue
    basename "$d" >> "$WORK/kernels"
  done
fi
sort -V -o "$WORK/kernels" "$WORK/kernels"
[ -s "$WORK/kernels" ] || fail "No kernel directories found in $MODULES_ROOT"
PRIMARY="$(tail -n 1 "$WORK/kernels")"
log "image kernels: $(tr '\n' ' ' < "$WORK/kernels")(primary: $PRIMARY)"

# ---- 6/7. the RPM set, split by RPM Name ----------------------------------------------------------------
: > "$WORK/kmods"     # lines: <rpm path>
: > "$WORK/managed"   # lines: <rpm path>
for f in "$RPM_DIR"/*.rpm; do
  [ -f "$f" ] || continue
  b="$(basename "$f")"
  case "$b" in
    *.src.rpm|*-debug*|*-devel*|*-test*) continue ;;
  esac
  name="$(rpm -qp --qf '%{NAME}' "$f" 2>/dev/null)" || fail "Could not read RPM header of $f"
  if [ "$name" = kmod-zfs ]; then
    printf '%s\n' "$f" >> "$WORK/kmods"
  else
    printf '%s\n' "$f" >> "$WORK/managed"
  fi
done
if [ ! -s "$WORK/kmods" ] && [ ! -s "$WORK/managed" ]; then
  fail "No ZFS RPMs found in $RPM_DIR"
fi
[ -s "$WORK/kmods" ] || fail "No kmod-zfs RPMs found in cache image"

# ---- 8. map each kmod RPM to its kernel -----------------------------------------------------------------
: > "$WORK/map"       # lines: <kernel> <rpm path>
while IFS= read -r f; do
  # Exactly .../modules/<K>/extra/zfs/zfs.ko, uncompressed; /lib and /usr/lib are the same on merged-/usr.
  k="$(rpm -qpl "$f" | sed -n 's#^\(/usr\)\{0,1\}/lib/modules/\([^/]*\)/extra/zfs/zfs\.ko$#\2#p' | head -n 1)"
  [ -n "$k" ] || fail "Could not determine kernel release for $f"
  if cut -d ' ' -f 1 "$WORK/map" | grep -Fqx "$k"; then
    fail "Multiple kmod-zfs RPMs found for kernel $k"
  fi
  printf '%s %s\n' "$k" "$f" >> "$WORK/map"
done < "$WORK/kmods"

# Exact string match (kernel releases contain regex metacharacters such as '.').
kmod_for() { awk -v k="$1" '$1 == k { print substr($0, length(k) + 2); exit }' "$WORK/map"; }

# ---- 9. every image kernel needs a kmod (extra kmods are ignored) ------------------------------------------
while IFS= read -r k; do
  [ -n "$(kmod_for "$k")" ] || fail "No kmod-zfs RPM found for base kernel $k. Cached akmods are stale; rebuild akmods."
done < "$WORK/kernels"

# ---- 10. install userspace + the primary kernel's kmod as packages ---------------------------------------
PRIMARY_KMOD="$(kmod_for "$PRIMARY")"
set --
while IFS= read -r f; do set -- "$@" "$f"; done < "$WORK/managed"
set -- "$@" "$PRIMARY_KMOD"
if [ "$HAVE_RPM_OSTREE" = 1 ]; then
  log "rpm-ostree install $*"
  rpm-ostree install "$@"
else
  log "rpm -i --nodeps $* (no rpm-ostree in this base)"
  rpm -i --nodeps "$@"
fi

# ---- 11. other kernels: unpack their kmod payloads -----------------------------------------------------
# Every kmod RPM has the same identity (kmod-zfs), so the package manager can keep only one.
if [ "$(wc -l < "$WORK/kernels")" -gt 1 ]; then
  for cmd in rpm2cpio cpio; do
    command -v "$cmd" >/dev/null 2>&1 || fail "Required command is not available: $cmd"
  done
  while IFS= read -r k; do
    [ "$k" = "$PRIMARY" ] && continue
    f="$(kmod_for "$k")"
    rpm2cpio "$f" > "$WORK/payload.cpio" 2> "$WORK/err" || fail "rpm2cpio failed for $f: $(cat "$WORK/err")"
    (cd / && cpio -idmu --quiet < "$WORK/payload.cpio") 2> "$WORK/err" || fail "cpio failed for $f: $(cat "$WORK/err")"
    rm -f "$WORK/payload.cpio"
    log "unpacked $(basename "$f") for kernel $k"
  done < "$WORK/kernels"
fi

# ---- 12. every kernel has its module; refresh module dependency data --------------------------------------
while IFS= read -r k; do
  [ -f "$MODULES_ROOT/$k/extra/zfs/zfs.ko" ] || fail "No ZFS module for base kernel $k. Cached akmods are stale; rebuild akmods."
  depmod -a "$k"
  log "depmod -a $k"
done < "$WORK/kernels"
log "ZFS installed for $(wc -l < "$WORK/kernels" | tr -d ' ') kernel(s)"
