#!/usr/bin/env bash
# The end-to-end suite (tests/e2e): the demo in a real headless Chromium, driven by playwright-core
# and run by Node's own test runner. Installs what is missing — Debian's chromium (playwright's own
# browser download is not used), playwright-core from tests/e2e/package-lock.json — builds hubgate
# if needed, and runs it. Screenshots and gateway logs land in tests/e2e/output/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are missing: install Node.js 20 or later, then run this again" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old: the suite needs 20 or later" >&2
  exit 1
fi

(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
# The OpenID Provider that oidc.test.js signs in against.
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
cargo build --locked --quiet

cd tests/e2e
export CHROMIUM="$chromium"
exec node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec ./*.test.js
