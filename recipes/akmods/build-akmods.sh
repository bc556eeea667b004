#!/bin/sh
# build-akmods.sh: build the ZFS RPMs for ONE kernel release inside the builder container, from an
# OpenZFS release tarball (a GitHub release tarball with a generated ./configure, or a tree exported
# from git that needs ./autogen.sh first).
#
# Contract (the pipeline runs exactly this):
#   podman run --rm [--network=none] \
#     -v <recipe-dir>/akmods:/recipe:ro -v <dir-with-tarball>:/src:ro -v <outdir>:/out \
#     [-v <host ccache dir>:/ccache] \
#     -e KERNEL_RELEASE=<k> -e ZFS_VERSION=<v> -e FEDORA_VERSION=<f> \
#     [-e ZFS_BUILD_USERSPACE=1] [-e ZFS_LINUX_EXPERIMENTAL=1] \
#     <builder-image@digest> /bin/sh /recipe/build-akmods.sh
#
# Inputs:  /src/zfs-<v>.tar.gz (fetched by the pipeline on the host).
#          The kernel's build tree: found in the builder (/lib/modules/<k>/build and .../source, Fedora's
#          /usr/src/kernels/<k>, Debian's /usr/src/linux-headers-<k>), or installed here with
#          `dnf install kernel-devel-<k>` when the builder has dnf and the network (production).
# Outputs: /out/rpms/kmods/zfs/kmod-zfs-<k>-<v>-1.fc<f>.<arch>.rpm  RPM Name kmod-zfs, holding exactly
#              /usr/lib/modules/<k>/extra/zfs/*.ko (spl.ko, zfs.ko), stripped of debug info
#          with ZFS_BUILD_USERSPACE=1 also, once per release:
#          /out/rpms/kmods/zfs/zfs-<v>-1.fc<f>.<arch>.rpm            RPM Name zfs: zfs, zpool, ... (all but libraries)
#          /out/rpms/kmods/zfs/lib<name><soname>-<v>-1.fc<f>.<arch>.rpm one per shared library
#              (libzfs6, libzpool6, libnvpair3, libuutil3, libzfs_core3, ... as Fedora names them)
#          /out/rpms appears only when everything succeeded (built in a temp dir, renamed into place).
#
# ZFS_LINUX_EXPERIMENTAL=1 (the stream's zfs.allowExperimental, for a kernel newer than the release's
# Linux-Maximum) becomes configure's --enable-linux-experimental.
#
# Why not OpenZFS's `make rpm-kmod` / `make rpm-utils`: both go through `make dist` and
# `rpmbuild --rebuild`, which runs ./configure a second time inside rpmbuild (about 3 minutes per kernel
# on 2 cores, 40% of the build), and the generic specs name their packages and paths after kmodtool
# (/lib/modules/<k>/extra/ without the zfs/ folder the akmods cache contract and install-zfs.sh rely
# on) and expect Fedora's macro set, which a Debian builder lacks. So this recipe configures and
# builds once with OpenZFS's own configure and make, then packages the built files with small
# binary-only specs written below; package names follow Fedora's (kmod-zfs, zfs, lib*<soname>).
#
# Build caches: the build runs in a fixed folder and uses ccache when the builder has it and the host
# mounts a cache at /ccache, so a second build of the same kernel on the same host compiles almost
# nothing (configure alone compiles ~150 test modules). Timings of each step are printed as
# `build-akmods: time <step> <seconds>s` for the pipeline to report.
#
# Synthetic releases (the hermetic test world's fixture tree, marked by a FIXTURE file at its top)
# implement the same configure/make interface with stand-in modules and need no kernel build tree.
set -eu

log() { printf 'build-akmods: %s\n' "$*"; }
fail() { printf 'build-akmods: ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
timed() { # step-name command...: runs the command, prints its duration
  step="$1"; shift
  t0=$(now)
  "$@"
  log "time $step $(( $(now) - t0 ))s"
}

# ---- 1. validate the environment -------------------------------------------------------------------
K="${KERNEL_RELEASE:-}"
V="${ZFS_VERSION:-}"
F="${FEDORA_VERSION:-}"
[ -n "$K" ] || fail "KERNEL_RELEASE is not set; pass -e KERNEL_RELEASE=<kernel release, e.g. 6.18.3-200.fc43.x86_64>."
[ -n "$V" ] || fail "ZFS_VERSION is not set; pass -e ZFS_VERSION=<x.y.z>."
[ -n "$F" ] || fail "FEDORA_VERSION is not set; pass -e FEDORA_VERSION=<digits, e.g. 43>."
# Every value ends up in file names, paths and rpm macros: keep to conservative charsets.
case "$K" in
  [0-9]*) ;;
  *) fail "KERNEL_RELEASE '$K' must start with a digit (a uname -r value like 6.18.3-200.fc43.x86_64)." ;;
esac
case "$K" in
  *[!A-Za-z0-9._+~-]*) fail "KERNEL_RELEASE '$K' contains characters outside [A-Za-z0-9._+~-]." ;;
esac
case "$V" in
  [0-9]*.[0-9]*) ;;
  *) fail "ZFS_VERSION '$V' must look like 2.4.4." ;;
esac
case "$V" in
  *[!0-9.]*|*..*|*.) fail "ZFS_VERSION '$V' must contain only digits and single dots, like 2.4.4." ;;
esac
case "$F" in
  ''|*[!0-9]*) fail "FEDORA_VERSION '$F' must be digits only, like 43." ;;
esac
USERSPACE="${ZFS_BUILD_USERSPACE:-0}"
EXPERIMENTAL="${ZFS_LINUX_EXPERIMENTAL:-0}"
log "kernel=$K zfs=$V fedora=$F userspace=$USERSPACE experimental=$EXPERIMENTAL"

for cmd in rpmbuild rpm tar gzip make; do
  command -v "$cmd" >/dev/null 2>&1 || fail "Required command is not available in the builder image: $cmd"
done
TARBALL="/src/zfs-$V.tar.gz"
[ -f "$TARBALL" ] || fail "Source tarball $TARBALL not found; mount the folder holding zfs-$V.tar.gz at /src."
[ -d /out ] || fail "Output folder /out is not mounted; pass -v <outdir>:/out."
[ -w /out ] || fail "Output folder /out is not writable."
[ ! -e /out/rpms ] || fail "/out/rpms already exists; give each build an empty output folder."

# A fixed build folder (the container is private and removed afterwards): compiler caches key on paths.
BUILD=/var/tmp/build-akmods
rm -rf "$BUILD"
mkdir -p "$BUILD"
STAGE=""
cleanup() {
  rm -rf "$BUILD"
  if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
JOBS="$(nproc 2>/dev/null || echo 2)"

if command -v ccache >/dev/null 2>&1 && [ -d /ccache ] && [ -w /ccache ]; then
  for d in /usr/lib64/ccache /usr/lib/ccache; do
    if [ -d "$d" ]; then PATH="$d:$PATH"; break; fi
  done
  export PATH CCACHE_DIR=/ccache CCACHE_BASEDIR="$BUILD" CCACHE_NOHASHDIR=1 \
    CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime,file_macro,locale \
    CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}" CCACHE_COMPILERCHECK=content
  ccache -z >/dev/null 2>&1 || true
  log "ccache: on ($CCACHE_DIR)"
else
  log "ccache: off (no ccache in the builder or no /ccache mount)"
fi

# Runs a build command with its output in a log; on failure quotes the first compiler/configure error.
run_logged() { # what logfile command...
  what="$1"; logfile="$2"; shift 2
  if ! "$@" > "$logfile" 2>&1; then
    tail -n 30 "$logfile" >&2
    # The first error line; configure prints "configure: error:" alone and the reason on the next line.
    first="$(awk '/error:|Error:|\*\*\* / && !f { f = 1; l = $0; if (l ~ /error: *$/) next; print l; exit }
                  f && NF { sub(/^[ \t*]+/, ""); print l " " $0; exit }' "$logfile")"
    fail "$what failed for kernel $K (zfs $V): ${first:-see the last lines above}"
  fi
}

# ---- 2. unpack, and generate ./configure when the tree has none --------------------------------------
tar -xzf "$TARBALL" -C "$BUILD" --no-same-owner
SRC="$BUILD/zfs-$V"
[ -d "$SRC" ] || fail "$TARBALL does not contain the top folder zfs-$V/."
if [ -f "$SRC/FIXTURE" ]; then FIXTURE=1; log "synthetic release (fixture tree): stand-in modules"; else FIXTURE=0; fi
if [ ! -x "$SRC/configure" ]; then
  [ -x "$SRC/autogen.sh" ] || fail "$TARBALL has neither ./configure nor ./autogen.sh: not an OpenZFS source tree."
  for cmd in autoconf automake libtoolize; do
    command -v "$cmd" >/dev/null 2>&1 || fail "$TARBALL has no generated ./configure and the builder lacks $cmd: install autoconf, automake and libtool in the builder image, or use a release tarball with ./configure."
  done
  (cd "$SRC" && timed autogen run_logged "./autogen.sh" "$BUILD/autogen.log" ./autogen.sh)
else
  log "time autogen 0s (tarball ships ./configure)"
fi
# Userspace gets its own copy: one tree cannot be configured for kernel and user at once.
if [ "$USERSPACE" = 1 ]; then cp -a "$SRC" "$BUILD/user-zfs-$V"; fi

# ---- 3. the kernel's build tree --------------------------------------------------------------------
# Debian splits it (headers-<k> for the generated files, headers-<ver>-common for the source);
# /lib/modules/<k>/{build,source} point at both. Fedora's kernel-devel is one folder.
find_ktree() {
  KOBJ=""; KSRC=""
  for d in "/lib/modules/$K/build" "/usr/src/kernels/$K" "/usr/src/linux-headers-$K"; do
    if [ -f "$d/Makefile" ] && [ -f "$d/.config" ]; then KOBJ="$(readlink -f "$d")"; break; fi
  done
  [ -n "$KOBJ" ] || return 1
  KSRC="$KOBJ"
  if [ -d "/lib/modules/$K/source" ]; then KSRC="$(readlink -f "/lib/modules/$K/source")"; fi
  return 0
}
if [ "$FIXTURE" = 1 ]; then
  KOPTS=""
elif find_ktree; then
  KOPTS="--with-linux=$KSRC --with-linux-obj=$KOBJ"
elif command -v dnf >/dev/null 2>&1; then
  log "installing kernel-devel-$K with dnf (the builder needs the network)"
  timed kernel-devel run_logged "dnf install kernel-devel-$K" "$BUILD/dnf.log" dnf -y install "kernel-devel-$K"
  find_ktree || fail "kernel-devel-$K did not provide a build tree in /usr/src/kernels/$K."
  KOPTS="--with-linux=$KSRC --with-linux-obj=$KOBJ"
else
  fail "No build tree for kernel $K in the builder (looked in /lib/modules/$K/build, /usr/src/kernels/$K, /usr/src/linux-headers-$K) and no dnf to install kernel-devel-$K: use a builder image that carries the headers or can install them (docs/operations.md, \"Builder image\")."
fi
[ -z "$KOPTS" ] || log "kernel build tree: $KOBJ (source $KSRC)"

# ---- 4. kernel modules -------------------------------------------------------------------------------
XOPTS=""
if [ "$EXPERIMENTAL" = 1 ]; then XOPTS="--enable-linux-experimental"; fi
# shellcheck disable=SC2086 # KOPTS and XOPTS are option lists without spaces inside an option
(cd "$SRC" && timed kmod-configure run_logged "configure (kernel modules)" "$BUILD/configure-kmod.log" \
  env KERNEL_RELEASE="$K" ./configure --with-config=kernel $KOPTS $XOPTS)
(cd "$SRC" && timed kmod-build run_logged "make (kernel modules)" "$BUILD/make-kmod.log" \
  env KERNEL_RELEASE="$K" make -j"$JOBS")
KMODS="$BUILD/kmod-root"
DEST="$KMODS/usr/lib/modules/$K/extra/zfs"
mkdir -p "$DEST"
find "$SRC/module" -name '*.ko' -type f > "$BUILD/kos"
[ -s "$BUILD/kos" ] || fail "make (kernel modules) produced no .ko files for kernel $K (zfs $V)."
while IFS= read -r ko; do
  install -m 0644 "$ko" "$DEST/$(basename "$ko")"
done < "$BUILD/kos"
[ -f "$DEST/zfs.ko" ] || fail "make (kernel modules) produced no zfs.ko for kernel $K (zfs $V)."
# 106 MB with debug info, about 12 MB without.
if command -v strip >/dev/null 2>&1; then
  for ko in "$DEST"/*.ko; do strip --strip-debug "$ko"; done
fi
if command -v modinfo >/dev/null 2>&1; then
  vm="$(modinfo -F vermagic "$DEST/zfs.ko" | cut -d ' ' -f 1)"
  [ "$vm" = "$K" ] || fail "zfs.ko was built for kernel '$vm', not $K: check the kernel build tree $KOBJ."
fi
log "kernel modules: $(cd "$DEST" && ls | tr '\n' ' ')"

# ---- 5. userspace (once per release) -------------------------------------------------------------------
USERROOT="$BUILD/user-root"
if [ "$USERSPACE" = 1 ]; then
  # Libraries go where the builder's own libc is (/usr/lib64 on Fedora, the multiarch folder on Debian):
  # the builder is the distribution the RPMs are installed into.
  LIBDIR="$(dirname "$(readlink -f "$(cc -print-file-name=libc.so.6 2>/dev/null || echo /usr/lib64/libc.so.6)")")"
  case "$LIBDIR" in /usr/lib*|/lib*) ;; *) LIBDIR=/usr/lib64 ;; esac
  LIBDIR="/usr${LIBDIR#/usr}"
  (cd "$BUILD/user-zfs-$V" && timed user-configure run_logged "configure (userspace)" "$BUILD/configure-user.log" \
    ./configure --with-config=user --prefix=/usr --sysconfdir=/etc --localstatedir=/var --libdir="$LIBDIR" \
      --sbindir=/usr/sbin --bindir=/usr/bin --disable-pyzfs --disable-sysvinit --enable-systemd \
      --with-systemdunitdir=/usr/lib/systemd/system --with-systemdpresetdir=/usr/lib/systemd/system-preset \
      --with-systemdmodulesloaddir=/usr/lib/modules-load.d --with-systemdgeneratordir=/usr/lib/systemd/system-generators \
      --with-udevdir=/usr/lib/udev --with-mounthelperdir=/usr/sbin --with-dracutdir=/usr/lib/dracut)
  (cd "$BUILD/user-zfs-$V" && timed user-build run_logged "make (userspace)" "$BUILD/make-user.log" make -j"$JOBS")
  (cd "$BUILD/user-zfs-$V" && run_logged "make install (userspace)" "$BUILD/install-user.log" make install DESTDIR="$USERROOT")
  # Development files, static archives, test suites and pkg-config files are not for the image.
  find "$USERROOT" \( -name '*.la' -o -name '*.a' \) -delete
  rm -rf "$USERROOT/usr/include" "$USERROOT/usr/share/zfs" "$USERROOT/$LIBDIR/pkgconfig" "$USERROOT/usr/share/doc"
  find "$USERROOT" -type l -name 'lib*.so' -delete
  for bin in zfs zpool; do
    [ -x "$USERROOT/usr/sbin/$bin" ] || fail "make install (userspace) did not install /usr/sbin/$bin."
  done
fi
[ -z "${CCACHE_DIR:-}" ] || log "ccache: $(ccache -s 2>/dev/null | grep -E -i 'hits|cache hit \(rate\)' | tr -s ' ' | tr '\n' ';')"

# ---- 6. package --------------------------------------------------------------------------------------
TOP="$BUILD/rpmbuild"
mkdir -p "$TOP/SPECS"
# Writes a binary-only spec packaging the files under a staged root; rpmbuild copies them as they are.
write_spec() { # name summary root files-list requires
  name="$1"; summary="$2"; root="$3"; files="$4"; requires="$5"
  {
    printf '%s\n' \
      '%global debug_package %{nil}' '%global _build_id_links none' '%global __os_install_post %{nil}' \
      '%global __brp_check_rpaths %{nil}' '%global __requires_exclude_from ^/usr/lib/modules/.*$'
    printf 'Name: %s\nVersion: %s\nRelease: 1.fc%s\nSummary: %s\nLicense: CDDL\nURL: https://github.com/openzfs/zfs\n' \
      "$name" "$V" "$F" "$summary"
    [ -z "$requires" ] || printf 'Requires: %s\n' "$requires"
    printf '\n%%description\n%s (OpenZFS %s, built by kinoite-zfs recipes/akmods/build-akmods.sh).\n' "$summary" "$V"
    printf '\n%%install\nmkdir -p %%{buildroot}\ncd %s\n' "$root"
    printf 'while IFS= read -r f; do mkdir -p "%%{buildroot}$(dirname "$f")"; cp -P --preserve=mode "./$f" "%%{buildroot}$f"; done < %s\n' "$files"
    printf '\n%%files\n'
    # Directories the package owns are implied by its files; quote paths for rpm.
    sed 's/.*/"&"/' "$files"
  } > "$TOP/SPECS/$name.spec"
}
build_rpm() { # name
  run_logged "rpmbuild of $1" "$BUILD/rpmbuild-$1.log" \
    rpmbuild -bb --nodeps --define "_topdir $TOP" "$TOP/SPECS/$1.spec"
}
(cd "$KMODS" && find . -type f | sed 's#^\.##' | sort) > "$BUILD/kmod.files"
write_spec kmod-zfs "ZFS kernel modules for kernel $K" "$KMODS" "$BUILD/kmod.files" ""
timed package build_rpm kmod-zfs
if [ "$USERSPACE" = 1 ]; then
  : > "$BUILD/zfs.files"
  (cd "$USERROOT" && find . \( -type f -o -type l \) | sed 's#^\.##' | sort) > "$BUILD/all.files"
  libs=""
  # One package per shared library, named like Fedora's: libzfs.so.6.0.0 -> libzfs6.
  for lib in $(grep -E "^$LIBDIR/lib[A-Za-z0-9_]+\.so\.[0-9]+$" "$BUILD/all.files" || true); do
    base="$(basename "$lib")"; stem="${base%%.so.*}"; soname="${base##*.so.}"
    pkg="$stem$soname"
    grep -E "^$LIBDIR/$stem\.so\.$soname(\.|$)" "$BUILD/all.files" > "$BUILD/$pkg.files"
    write_spec "$pkg" "OpenZFS library $stem.so.$soname" "$USERROOT" "$BUILD/$pkg.files" ""
    build_rpm "$pkg"
    libs="$libs $pkg"
  done
  for pkg in $libs; do cat "$BUILD/$pkg.files"; done | sort > "$BUILD/lib.files"
  comm -23 "$BUILD/all.files" "$BUILD/lib.files" > "$BUILD/zfs.files"
  req=""
  for pkg in $libs; do req="$req${req:+, }$pkg = $V-1.fc$F"; done
  write_spec zfs "Commands to control the ZFS kernel modules and pools" "$USERROOT" "$BUILD/zfs.files" "$req"
  build_rpm zfs
  log "userspace packages: zfs$libs"
fi

# ---- 7. verify the kmod holds exactly this kernel's modules ------------------------------------------
KMOD_BUILT="$(ls "$TOP"/RPMS/*/kmod-zfs-*.rpm)"
ARCH="$(rpm -qp --qf '%{ARCH}' "$KMOD_BUILT")"
KO="/usr/lib/modules/$K/extra/zfs/zfs.ko"
if ! rpm -qlp "$KMOD_BUILT" | grep -Fqx "$KO"; then
  rpm -qlp "$KMOD_BUILT" >&2 || true
  fail "Merged shared akmods cache is missing kernel RPMs for: $K"
fi
OTHER="$(rpm -qlp "$KMOD_BUILT" | grep -E '\.ko(\.[a-z]+)?$' | grep -Fv "/usr/lib/modules/$K/extra/zfs/" || true)"
[ -z "$OTHER" ] || fail "kmod-zfs RPM for $K also holds modules for other kernels: $OTHER"
log "verified $KO in kmod-zfs"

# ---- 8. publish into /out atomically ----------------------------------------------------------------
# Stage inside /out (same filesystem), then one rename: /out/rpms is complete or absent.
STAGE="$(mktemp -d /out/.rpms.partial.XXXXXX)"
mkdir -p "$STAGE/kmods/zfs"
cp "$KMOD_BUILT" "$STAGE/kmods/zfs/kmod-zfs-$K-$V-1.fc$F.$ARCH.rpm"
for f in "$TOP"/RPMS/*/*.rpm; do
  case "$f" in */kmod-zfs-*) continue ;; esac
  cp "$f" "$STAGE/kmods/zfs/"
done
chmod 0755 "$STAGE" "$STAGE/kmods" "$STAGE/kmods/zfs"
chmod 0644 "$STAGE"/kmods/zfs/*.rpm
mv "$STAGE" /out/rpms
STAGE=""
for f in /out/rpms/kmods/zfs/*.rpm; do log "wrote $f"; done
log "done"
