#!/usr/bin/env bash
# 1,000 WebSocket upgrades through the gateway while every core is busy, each proven by an echo,
# to an ordinary app and to one that answers the upgrade at once (what made Pingora 0.9.1 tear
# tunnels down, cloudflare/pingora#946). Bounded: the load stops with the run, at most LOAD_SECONDS.
#   UPGRADES=1000 PARALLEL=16 LOAD_SECONDS=120 scripts/websocket-soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
upgrades=${UPGRADES:-1000}
parallel=${PARALLEL:-16}
load_seconds=${LOAD_SECONDS:-120}
cargo test --locked --test websocket_many --no-run
hogs=()
stop_load() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_load EXIT
for _ in $(seq "$(nproc)"); do
  timeout "$load_seconds" sh -c 'while :; do :; done' &
  hogs+=("$!")
done
echo "load: $(nproc) busy loops for at most ${load_seconds}s; $upgrades upgrades, $parallel at a time"
WEBSOCKET_UPGRADES=$upgrades WEBSOCKET_PARALLEL=$parallel \
  cargo test --locked --test websocket_many -- --nocapture --test-threads 1 2>&1 |
  grep -E 'upgrades|test result|did not echo|panicked'
