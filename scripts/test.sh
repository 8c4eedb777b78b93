#!/usr/bin/env bash
# Installs what is missing, then runs every check: formatting, clippy, unit and integration tests,
# and the end-to-end suite in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets --test soak -- -D warnings
# The OpenID Provider the OIDC tests sign in against (tests/oidc, from its lockfile).
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
cargo test --locked
scripts/e2e.sh
