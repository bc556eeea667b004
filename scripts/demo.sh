#!/usr/bin/env bash
# The demo: set-up (idempotent), then the whole pipeline on the hermetic demo world with the
# Temporal Web UI to look at. Leaves everything running; `kinoite-zfs world down --dir .state/demo --all` stops it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
cd "$repo"
exec node bin/kinoite-zfs.js demo "$@"
