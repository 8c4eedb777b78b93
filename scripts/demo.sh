#!/usr/bin/env bash
# Installs what is missing, builds hubgate and runs the demo: the repo's gateway.toml with two
# built-in demo apps. Open the URL it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked
exec target/debug/hubgate demo -c gateway.toml
