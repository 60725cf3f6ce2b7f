#!/usr/bin/env bash
# Installs the pinned Particle clients (only when package-lock.json changed) and runs the
# client-compatibility suite and the browser tests of the console (browser/) against a freshly
# built wick (or $WICK_BIN). Used by `make test-compat`.
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm go; do
  if ! command -v "$tool" >/dev/null; then
    # On a developer machine without Node the suite is skipped; in CI it must run.
    if [ -n "${CI:-}" ]; then echo "compat: $tool is required" >&2; exit 1; fi
    echo "compat: SKIPPED: $tool is not installed (install Node.js 20+ and npm to run the client-compatibility suite)" >&2
    exit 0
  fi
done

# --ignore-scripts: particle-cli's USB/serial add-ons would try to fetch or compile native
# binaries; none of the commands under test load them.
stamp=node_modules/.wick-compat-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --ignore-scripts --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# Build wick once for both suites (unless WICK_BIN names a binary already).
if [ -z "${WICK_BIN:-}" ]; then
  bindir=$(mktemp -d)
  trap 'rm -rf "$bindir"' EXIT
  echo "compat: building ./cmd/wick ..."
  (cd .. && go build -o "$bindir/wick" ./cmd/wick)
  export WICK_BIN="$bindir/wick"
fi

# The Particle clients' suite, then the console in a browser (browser/README.md). Both run
# even when the first fails; the exit status is a failure when either failed.
status=0
npm test -- "$@" || status=$?
npm run --silent test:browser -- "$@" || status=$?
exit "$status"
