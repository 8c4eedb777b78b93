#!/usr/bin/env bash
# Installs what building and testing hubgate needs and this machine lacks. Debian/Ubuntu (apt-get);
# run as root or with sudo. The Rust toolchain itself is expected (https://rustup.rs).
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)          # Pingora builds zlib-ng with cmake
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # the TLS test makes a certificate
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)  # the tests start their own
# The forward-auth tests run the documented snippets with real nginx and Caddy in front.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  # Keep the packages' own services (nginx, caddy, redis on their standard ports) from starting:
  # the tests start their own on free ports.
  policy=/usr/sbin/policy-rc.d
  [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null; $sudo chmod +x "$policy"; added_policy=1; }
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "${added_policy:-}" ] || $sudo rm -f "$policy"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from https://rustup.rs, then run this again" >&2
  exit 1
fi
