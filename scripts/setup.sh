#!/usr/bin/env bash
# One idempotent set-up step for the demo, the tests and CI: Debian packages; the Temporal CLI,
# cosign, actionlint and the self-hosted Temporal server, schema tool and Web UI server
# (deploy/temporal/) built from the Go module proxy into a per-user tools cache outside the clone;
# npm ci; and the compiled CLI and worker (dist/).
# Each part is skipped when already done; each part says how long it took.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_dir=${KINOITE_ZFS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kinoite-zfs/tools}
temporal_version=v1.5.1
cosign_version=v2.6.5
actionlint_version=v1.7.12
# The self-hosted Temporal cluster (deploy/temporal/): the server the CLI embeds, its schema tool, the UI server.
temporal_server_version=v1.29.1
temporal_ui_server_version=v2.42.1
# postgresql: the self-hosted Temporal cluster's test; prometheus: the metrics test.
debian_packages=(podman buildah skopeo runc docker-registry busybox-static rpm jq zstd mmdebstrap kmod cpio git curl ca-certificates uidmap apache2-utils chromium qemu-system-x86 postgresql prometheus)

say() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
step_start() { step_t0=$(date +%s); say "$1"; }
step_end() { say "  done in $(( $(date +%s) - step_t0 ))s"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else fail "need root to run: $* (install sudo or run as root)"; fi
}

# 1. Debian packages
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step_start "installing Debian packages: ${missing[*]}"
  command -v apt-get >/dev/null || fail "apt-get not found: install ${missing[*]} with your package manager"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    || fail "apt-get update failed: check the network route to the Debian mirror"
  # --no-install-recommends: qemu-system-x86 would otherwise pull in a desktop's worth of packages.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed: run it by hand to see why"
  step_end
else
  say "Debian packages: all present (${#debian_packages[@]})"
fi

# 2. Go tools, pinned, into the tools cache (outside the clone, so fresh clones reuse them). The
# builds run at the same time (and beside npm ci below): much of a cold build is module downloads,
# which overlap with the other builds' compiling. Each build's output goes to a log, quoted on failure.
go_tool() { # name version "module[ module…]" [ldflags] [renames: built=wanted …]
  local name=$1 version=$2 modules=$3 ldflags=${4:-} renames=${5:-}
  local dir=$tools_dir/$name-$version t0 m pkgs=() r
  if [ -x "$dir/$name" ]; then
    say "$name $version: cached at $dir/$name"
    return
  fi
  command -v go >/dev/null || fail "$name $version is not in $dir and Go is not installed: install Go >= 1.22 (https://go.dev/dl) or set KINOITE_ZFS_TOOLS_DIR to a folder holding $name-$version/$name"
  for m in $modules; do pkgs+=("$m@$version"); done
  say "building $name $version from the Go module proxy (several minutes on a fresh machine; log $dir.log)"
  t0=$(date +%s)
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  # Several packages of one module at one version build in one go install, sharing their compiling.
  if ! CGO_ENABLED=0 GOBIN="$dir.tmp" go install ${ldflags:+-ldflags "$ldflags"} "${pkgs[@]}" >"$dir.log" 2>&1; then
    tail -n 20 "$dir.log" >&2
    fail "go install ${pkgs[*]} failed (log $dir.log): check GOPROXY access and disk space (the Go caches need ~6 GB)"
  fi
  # go install names a binary after its package folder (two of these are called "server").
  for r in $renames; do mv "$dir.tmp/${r%%=*}" "$dir.tmp/${r#*=}"; done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  say "$name $version: built in $(( $(date +%s) - t0 ))s"
}
mkdir -p "$tools_dir"
go_pids=()
# Three chains at once: the Temporal server after the CLI (the CLI embeds the same server packages,
# so the second build reuses most of the first's compiling instead of racing it on the same cores),
# cosign, and the UI server after actionlint.
( go_tool temporal "$temporal_version" github.com/temporalio/cli/cmd/temporal "-X github.com/temporalio/cli/temporalcli.Version=${temporal_version#v}"
  go_tool temporal-server "$temporal_server_version" "go.temporal.io/server/cmd/server go.temporal.io/server/cmd/tools/sql" "" \
    "server=temporal-server sql=temporal-sql-tool" ) & go_pids+=($!)
go_tool cosign "$cosign_version" github.com/sigstore/cosign/v2/cmd/cosign & go_pids+=($!)
( go_tool actionlint "$actionlint_version" github.com/rhysd/actionlint/cmd/actionlint
  go_tool temporal-ui-server "$temporal_ui_server_version" github.com/temporalio/ui-server/v2/cmd/server "" \
    "server=temporal-ui-server" ) & go_pids+=($!)

# 3. Node dependencies
command -v node >/dev/null || fail "Node.js is not installed: install Node.js 20 (https://nodejs.org)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node.js $(node -v) is too old: install Node.js 20 or newer"
lock_hash=$(sha256sum "$repo/package-lock.json" | cut -c1-16)
if [ -f "$repo/node_modules/.kinoite-zfs-lock" ] && [ "$(cat "$repo/node_modules/.kinoite-zfs-lock")" = "$lock_hash" ]; then
  say "npm dependencies: up to date"
else
  step_start "npm ci"
  (cd "$repo" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed: check access to the npm registry"
  echo "$lock_hash" > "$repo/node_modules/.kinoite-zfs-lock"
  step_end
fi

go_failed=0
for pid in "${go_pids[@]}"; do wait "$pid" || go_failed=1; done
[ "$go_failed" = 0 ] || fail "a Go tool build failed (above)"

# 4. The compiled CLI and worker (dist/; npm ci builds it too): again whenever a source is newer
if dist_state=$(node "$repo/bin/compiled-state.js"); then
  say "compiled CLI and worker: up to date (dist/)"
else
  step_start "npm run build (${dist_state})"
  # A failed build is not fatal: bin/kinoite-zfs.js then runs the TypeScript sources (slower to start).
  if (cd "$repo" && npm run build --silent); then step_end
  else say "  WARNING: npm run build failed (above): the CLI runs from TypeScript until it succeeds"; fi
fi
say "ready: tools in $tools_dir"
