#!/usr/bin/env bash
# The test command: set-up (idempotent), the static checks (types, lint, format), the project's own
# services, then every test.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
cd "$repo"
npm run --silent typecheck
npm run --silent lint
node bin/kinoite-zfs.js services up
npm test
