#!/usr/bin/env bash
# Installs what is missing, builds hubgate and runs the demo: the repo's gateway.toml with two
# built-in demo apps. Open the URL it prints.
#
#   scripts/demo.sh          password sign-in (users.toml)
#   scripts/demo.sh --oidc   also "Sign in with the local OpenID provider": starts panva's
#                            oidc-provider (tests/oidc) on 127.0.0.1:8300 and serves gateway-oidc.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked

if [ "${1:-}" = "--oidc" ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "--oidc needs Node.js 20 or later and npm for the local provider" >&2
    exit 1
  fi
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
  node tests/oidc/provider.mjs scripts/demo-provider.json &
  provider=$!
  trap 'kill "$provider" 2>/dev/null' EXIT
  echo "local OpenID provider on http://127.0.0.1:8300 (any user name, any password; alice, carol and dave have groups)"
  target/debug/hubgate demo -c gateway-oidc.toml
else
  exec target/debug/hubgate demo -c gateway.toml
fi
