#!/usr/bin/env bash
# Runs the real-CAO end-to-end suite (test/e2e/real-cao.e2e.ts): installs/reuses what it needs with
# test/e2e/install.sh, then runs the suite on the Node 24 from node_modules, versions one after the
# other. A missing tool is a failure, never a skip. Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x node_modules/.bin/node ] || { echo "e2e: node_modules missing: run npm ci first" >&2; exit 1; }
bash test/e2e/install.sh >/dev/null
command -v tmux >/dev/null || { echo "e2e: tmux missing after install" >&2; exit 1; }
exec node_modules/.bin/node --test --test-force-exit --test-concurrency=1 --test-timeout=1800000 "$@" test/e2e/real-cao.e2e.ts
