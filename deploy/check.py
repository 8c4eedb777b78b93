#!/usr/bin/env python3
"""Helpers for deploy/check.sh: the contracts between the deploy files and the gateway.

  check.py static REPO
      Every PromQL expression in deploy/prometheus/alerts.yml and deploy/grafana/hubgate.json
      (panel targets and template-variable queries) must parse, name only metrics that
      src/metrics.rs exports (histograms as _bucket/_sum/_count) or `up`, use only labels those
      families carry (plus job/instance/namespace/pod from the scrape, le on _bucket), and, for
      labels with a fixed set of values (outcome, result, reason, op), only values that
      src/metrics.rs pre-creates. Also lints the dashboard's structure.
  check.py queries REPO PROMETHEUS_URL
      Runs every dashboard expression (Grafana variables filled in) against a live Prometheus and
      reads the state of every alert rule: each must evaluate without error.
  check.py configmap-toml CONFIGMAP_YAML OUTDIR
      Writes each *.toml key of the ConfigMap to OUTDIR, for `hubgate check`.
  check.py promconfig-static IN OUT
      Copies a Prometheus config with every kubernetes_sd_configs replaced by a static target, so
      a promtool built without Kubernetes discovery (Debian's) can check the rest of it.
  check.py k8s-consistency RENDERED_YAML
      Cross-checks the rendered manifests (kubectl kustomize deploy/k8s) against the gateway
      config they carry: selectors match pod labels, Service target ports exist, listen and
      metrics ports match the container ports, probes hit <hub.prefix>/ready and /health, every
      environment variable the config names comes from the Secret, mounted ConfigMap keys exist,
      upstreams and redis_url name existing Services and ports, containers are non-root with a
      read-only root filesystem.
  check.py compose-consistency COMPOSE_JSON REPO
      The same idea for `docker compose config --format json`: upstream and Redis hosts are
      services, published ports and Prometheus targets match the config's listeners, mounted
      files exist, the gateways share one HUBGATE_KEY_K1.

PromQL is parsed with the `promql-parser` package when it is installed (exact); otherwise metric
names are found with a regular expression and label checks are skipped (said in the output).
"""

import json
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

try:
    import promql_parser
except ImportError:  # optional: exact parsing
    promql_parser = None

SCRAPE_LABELS = {"job", "instance", "namespace", "pod"}
OTHER_METRICS = {"up"}  # Prometheus' own per-target series


# --- what src/metrics.rs exports ---------------------------------------------------------------

def parse_str_list(text):
    return re.findall(r'"([^"]*)"', text)


def exported(repo):
    """Returns ({series name: (family, labels)}, {(family, label): set of values}, notes)."""
    src = (repo / "src/metrics.rs").read_text()
    families = {}  # family -> (kind, labels)
    fields = {}  # struct field -> family
    for m in re.finditer(r'(\w+):\s*(counter|histogram)\(\s*"(\w+)",\s*"(?:[^"\\]|\\.)*",\s*(&\[[^\]]*\]|"[^"]*")', src):
        field, kind, name, labels = m.groups()
        families[name] = (kind, parse_str_list(labels))
        fields[field] = name
    for m in re.finditer(r'(\w+):\s*IntCounter::new\(\s*"(\w+)"', src):
        families[m.group(2)] = ("counter", [])
        fields[m.group(1)] = m.group(2)
    for m in re.finditer(r'Int(?:Gauge|Counter)Vec::new\(\s*Opts::new\(\s*"(\w+)",\s*"(?:[^"\\]|\\.)*",?\s*\),\s*&\[([^\]]*)\]', src):
        families.setdefault(m.group(1), ("gauge", parse_str_list(m.group(2))))
    if not families:
        sys.exit("error: found no metric definitions in src/metrics.rs (has its layout changed?)")
    prefix = re.search(r'Registry::new_custom\(\s*Some\("(\w+)"', src)
    prefix = (prefix.group(1) + "_") if prefix else ""

    series = {}
    for name, (kind, labels) in families.items():
        full = prefix + name
        if kind == "histogram":
            series[full + "_bucket"] = (full, labels + ["le"])
            series[full + "_sum"] = (full, labels)
            series[full + "_count"] = (full, labels)
        else:
            series[full] = (full, labels)

    # Fixed label values: those precreate() makes a zero series for.
    consts = {m.group(1): parse_str_list(m.group(2))
              for m in re.finditer(r'const (\w+):\s*\[&str;\s*\d+\]\s*=\s*\[(.*?)\];', src, re.S)}
    notes = []
    session = repo / "src/session/mod.rs"
    end_reasons = []
    if session.exists():
        body = re.search(r'fn as_str\(self\)[^{]*\{(.*?)\n    \}', session.read_text(), re.S)
        if body:
            end_reasons = re.findall(r'EndReason::\w+\s*=>\s*"(\w+)"', body.group(1))
    values = {}
    pre = re.search(r'fn precreate\(.*?\n    \}\n', src, re.S)
    if not pre:
        notes.append("precreate() not found in src/metrics.rs: label values not checked")
        return series, values, notes
    pre = pre.group(0)
    loops = [(m.start(), m.group(1), m.group(2).strip()) for m in re.finditer(r'for (\w+) in ([^{]+)\{', pre)]
    for call in re.finditer(r'self\.(\w+)\.with_label_values\(&\[([^\]]*)\]\)', pre):
        family = fields.get(call.group(1))
        if family is None or family not in families:
            continue
        labels = families[family][1]
        args = [a.strip() for a in call.group(2).split(",") if a.strip()]
        for label, arg in zip(labels, args):
            var = re.match(r'(\w+)', arg).group(1)
            decl = [l for l in loops if l[1] == var and l[0] < call.start()]
            if not decl:
                continue
            source = decl[-1][2]
            if source.startswith("["):
                vals = parse_str_list(source)
            elif source in consts:
                vals = consts[source]
            elif source == "EndReason::ALL" and end_reasons:
                vals = end_reasons
            else:
                continue  # app names come from the config: any value
            values[(prefix + family, label)] = set(vals)
    return series, values, notes


# --- expressions in the deploy files -----------------------------------------------------------

GRAFANA_DURATION = re.compile(r'\$\{?__(rate_interval|interval|range)\}?')
GRAFANA_VAR = re.compile(r'\$\{?(\w+)(?::\w+)?\}?')


def fill_grafana(expr, variables=None):
    expr = GRAFANA_DURATION.sub("5m", expr)
    variables = variables or {}
    return GRAFANA_VAR.sub(lambda m: variables.get(m.group(1), ".*"), expr)


def dashboard_exprs(dash):
    out = []

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((f'panel "{p.get("title")}" {t.get("refId")}', t["expr"], t.get("legendFormat", "")))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.fullmatch(r'\s*label_values\((.*),\s*(\w+)\s*\)\s*', q)
            if m:
                out.append((f'variable ${v["name"]}', m.group(1), "{{" + m.group(2) + "}}"))
            else:
                out.append((f'variable ${v["name"]}', q, ""))
    return out


def rule_exprs(rules):
    out = []
    for g in rules.get("groups", []):
        for r in g.get("rules", []):
            out.append((f'rule {r.get("alert") or r.get("record")}', r["expr"], ""))
    return out


def selectors(expr):
    """[(metric name, [(label, op, value)])] and [(aggregation labels, selectors below)]."""
    if promql_parser is None:
        names = re.findall(r'\b(hubgate_\w+|up)\b(?!\s*\()', re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr))
        return [(n, None) for n in names], []
    tree = promql_parser.parse(expr)
    found = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            ms = node.matchers.matchers if node.matchers else []
            found.append((node.name, [(m.name, str(m.op).split(".")[-1], m.value) for m in ms]))

    promql_parser.walk(tree, visit)
    aggs = []

    def visit_agg(node):
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            below = []

            def inner(n):
                if isinstance(n, promql_parser.VectorSelector):
                    below.append(n.name)
            promql_parser.walk(node.expr, inner)
            aggs.append((list(node.modifier.labels), below))

    promql_parser.walk(tree, visit_agg)
    return found, aggs


def check_exprs(items, series, values, problems):
    used = set()
    for where, raw, legend in items:
        expr = fill_grafana(raw)
        try:
            found, aggs = selectors(expr)
        except ValueError as e:
            problems.append(f"{where}: does not parse as PromQL: {e}: {raw}")
            continue
        labels_here = set(SCRAPE_LABELS)
        for name, matchers in found:
            if name is None or name == "":
                problems.append(f"{where}: a selector without a metric name: {raw}")
                continue
            if name in OTHER_METRICS:
                continue
            if name not in series:
                hint = ""
                if name + "_bucket" in series:
                    hint = " (a histogram: use _bucket, _sum or _count)"
                problems.append(f"{where}: {name} is not exported by src/metrics.rs{hint}")
                continue
            used.add(name)
            family, labels = series[name]
            labels_here |= set(labels)
            for label, op, value in matchers or []:
                if label == "__name__":
                    continue
                if label not in labels and label not in SCRAPE_LABELS:
                    problems.append(f"{where}: {name} has no label {label!r} (it has {labels})")
                    continue
                allowed = values.get((family, label))
                if allowed is None or "$" in value or value in (".*", ".+"):
                    continue
                if op in ("Equal", "NotEqual"):
                    given = [value]
                elif re.fullmatch(r'[\w|]+', value):
                    given = value.split("|")
                else:
                    continue
                for v in given:
                    if v not in allowed:
                        problems.append(f"{where}: {name}{{{label}={v!r}}} is never exported "
                                        f"(values: {sorted(allowed)})")
        for agg_labels, below in aggs:
            have = set(SCRAPE_LABELS)
            for n in below:
                have |= set(series.get(n, (None, []))[1])
            for label in agg_labels:
                if label not in have:
                    problems.append(f"{where}: aggregates by {label!r}, which none of {below} has")
        for label in re.findall(r'\{\{\s*(\w+)\s*\}\}', legend or ""):
            if promql_parser is not None and label not in labels_here:
                problems.append(f"{where}: legend uses {{{{{label}}}}}, a label none of its series has")
    return used


def lint_dashboard(dash, problems):
    ids = []
    boxes = []

    def walk(items):
        for p in items:
            yield p
            yield from walk(p.get("panels", []))

    for p in walk(dash.get("panels", [])):
        title = p.get("title")
        ids.append(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")):
            problems.append(f'panel "{title}": gridPos needs integer x, y, w, h')
            continue
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            problems.append(f'panel "{title}": gridPos is outside the 24 columns')
        for other_title, o in boxes:
            if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"]
                    and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]):
                problems.append(f'panel "{title}" overlaps panel "{other_title}"')
        boxes.append((title, g))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f'panel "{title}": datasource should be the ${{datasource}} variable')
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs:
            problems.append(f'panel "{title}": no targets')
        if len(refs) != len(set(refs)):
            problems.append(f'panel "{title}": duplicate refId')
    if len(ids) != len(set(ids)) or None in ids:
        problems.append("panel ids must be present and unique")
    names = [v.get("name") for v in dash.get("templating", {}).get("list", [])]
    if "datasource" not in names:
        problems.append("templating: no datasource variable")
    text = json.dumps(dash)
    for var in set(re.findall(r'\$\{?(\w+)', text)):
        if not var.startswith("__") and var not in names:
            problems.append(f"dashboard uses ${var}, which is not a template variable")
    if not dash.get("uid") or not dash.get("title"):
        problems.append("dashboard needs a uid and a title")


def cmd_static(repo):
    repo = Path(repo)
    series, values, notes = exported(repo)
    problems = []
    rules = yaml.safe_load((repo / "deploy/prometheus/alerts.yml").read_text())
    dash = json.loads((repo / "deploy/grafana/hubgate.json").read_text())
    lint_dashboard(dash, problems)
    used_rules = check_exprs(rule_exprs(rules), series, values, problems)
    used_dash = check_exprs(dashboard_exprs(dash), series, values, problems)
    families = sorted({f for f, _ in series.values()})
    print(f"  src/metrics.rs exports {len(families)} families: {', '.join(families)}")
    print(f"  fixed label values: " + "; ".join(f"{f.replace('hubgate_', '')}{{{l}}}={sorted(v)}" for (f, l), v in sorted(values.items())))
    print(f"  alerts.yml: {len(rule_exprs(rules))} rules use {len(used_rules)} series names; "
          f"hubgate.json: {len(dashboard_exprs(dash))} queries use {len(used_dash)} series names")
    unused = sorted(set(families) - {series[n][0] for n in used_rules | used_dash})
    if unused:
        print(f"  note: families used by neither file: {', '.join(unused)}")
    for n in notes:
        print(f"  note: {n}")
    if promql_parser is None:
        print("  note: promql-parser is not installed: names found by regex, labels not checked")
    for p in problems:
        print(f"  PROBLEM: {p}")
    return 1 if problems else 0


def prom_get(base, path, params):
    url = base.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def cmd_queries(repo, base):
    repo = Path(repo)
    dash = json.loads((repo / "deploy/grafana/hubgate.json").read_text())
    problems = []
    empty = []
    n = 0
    for where, raw, _ in dashboard_exprs(dash):
        expr = fill_grafana(raw, {"job": "hubgate"}).replace("[5m]", "[1m]")
        n += 1
        try:
            answer = prom_get(base, "/api/v1/query", {"query": expr})
        except Exception as e:  # an HTTP 400 is a bad query
            body = getattr(e, "read", lambda: b"")().decode(errors="replace")
            problems.append(f"{where}: {e} {body}")
            continue
        if answer.get("status") != "success":
            problems.append(f"{where}: {answer}")
        elif not answer["data"]["result"]:
            empty.append(where)
    print(f"  {n} dashboard queries evaluated by Prometheus; {n - len(problems) - len(empty)} returned series")
    for e in empty:
        print(f"  note: {e} returned no series")
    rules = prom_get(base, "/api/v1/rules", {})
    count = 0
    firing = []
    for g in rules["data"]["groups"]:
        for r in g["rules"]:
            count += 1
            if r.get("health") != "ok":
                problems.append(f'rule {r["name"]}: health {r.get("health")}: {r.get("lastError")}')
            if r.get("state") == "firing" or r.get("state") == "pending":
                firing.append(f'{r["name"]} ({r["state"]})')
    print(f"  {count} alert rules evaluated, all healthy" if not any(p.startswith("rule ") for p in problems)
          else f"  {count} alert rules evaluated")
    if firing:
        print(f"  note: pending/firing: {', '.join(firing)}")
    for p in problems:
        print(f"  PROBLEM: {p}")
    return 1 if problems or len(empty) > n // 2 else 0


def cmd_configmap_toml(path, outdir):
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for doc in yaml.safe_load_all(Path(path).read_text()):
        if doc and doc.get("kind") == "ConfigMap":
            for key, text in doc.get("data", {}).items():
                if key.endswith(".toml"):
                    (out / key).write_text(text)
                    print(out / key)
    return 0


def cmd_promconfig_static(src, dst):
    conf = yaml.safe_load(Path(src).read_text())
    for job in conf.get("scrape_configs", []):
        if job.pop("kubernetes_sd_configs", None) is not None:
            job.setdefault("static_configs", []).append({"targets": ["127.0.0.1:9100"]})
    Path(dst).write_text(yaml.safe_dump(conf, sort_keys=False))
    return 0


# --- Kubernetes and compose consistency ---------------------------------------------------------

def toml_loads(text):
    import tomllib  # Python 3.11+
    return tomllib.loads(text)


def port_of(addr):
    return int(addr.rsplit(":", 1)[1]) if addr else None


def host_of(addr):
    return addr.rsplit(":", 1)[0]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def cmd_k8s_consistency(path):
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    problems, checked = [], []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind.get("ConfigMap", [])}
    secrets = {s["metadata"]["name"]: set((s.get("stringData") or {}) | (s.get("data") or {}))
               for s in by_kind.get("Secret", [])}
    deployments = by_kind.get("Deployment", [])
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}

    def pods_of(selector):
        return [d for d in deployments if matches(selector, d["spec"]["template"]["metadata"].get("labels", {}))]

    for d in deployments:
        name = d["metadata"]["name"]
        tmpl = d["spec"]["template"]
        if not matches(d["spec"]["selector"].get("matchLabels"), tmpl["metadata"].get("labels", {})):
            problems.append(f"Deployment {name}: selector does not match its pod labels")
        pod_sc = tmpl["spec"].get("securityContext", {})
        volumes = {v["name"]: v for v in tmpl["spec"].get("volumes", [])}
        for c in tmpl["spec"]["containers"]:
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"Deployment {name}/{c['name']}: not runAsNonRoot")
            if not sc.get("readOnlyRootFilesystem"):
                problems.append(f"Deployment {name}/{c['name']}: root filesystem not read-only")
            if "resources" not in c:
                problems.append(f"Deployment {name}/{c['name']}: no resources")
            args = c.get("args", [])
            if "-c" not in args:
                continue
            conf_path = args[args.index("-c") + 1]
            # Which ConfigMap key is that file?
            files = {}
            for m in c.get("volumeMounts", []):
                v = volumes.get(m["name"], {})
                if "configMap" in v:
                    cm = v["configMap"]["name"]
                    items = v["configMap"].get("items") or [{"key": k, "path": k} for k in configmaps.get(cm, {})]
                    for it in items:
                        if it["key"] not in configmaps.get(cm, {}):
                            problems.append(f"Deployment {name}: ConfigMap {cm} has no key {it['key']}")
                        files[m["mountPath"].rstrip("/") + "/" + it["path"]] = configmaps.get(cm, {}).get(it["key"])
            text = files.get(conf_path)
            if text is None:
                problems.append(f"Deployment {name}: {conf_path} is not mounted from a ConfigMap")
                continue
            conf = toml_loads(text)
            conf_dir = conf_path.rsplit("/", 1)[0]
            users = conf.get("hub", {}).get("users_file", "users.toml")
            if (conf_dir + "/" + users) not in files:
                problems.append(f"Deployment {name}: hub.users_file {users} is not mounted next to {conf_path}")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            server = conf.get("server", {})
            listen = port_of(server.get("listen", "127.0.0.1:8000"))
            is_demo = "demo" in args
            if not is_demo:
                if not server.get("listen", "").startswith("0.0.0.0:"):
                    problems.append(f"Deployment {name}: server.listen must be 0.0.0.0:<port> in a pod")
                if ports.get("http") != listen:
                    problems.append(f"Deployment {name}: port 'http' {ports.get('http')} != server.listen port {listen}")
                metrics = server.get("metrics_listen", "127.0.0.1:9100")
                if metrics and ports.get("metrics") != port_of(metrics):
                    problems.append(f"Deployment {name}: port 'metrics' {ports.get('metrics')} != metrics_listen {metrics}")
                prefix = conf.get("hub", {}).get("prefix", "/hub")
                for probe, path in (("readinessProbe", prefix + "/ready"), ("livenessProbe", prefix + "/health")):
                    get = c.get(probe, {}).get("httpGet", {})
                    if get.get("path") != path or get.get("port") not in ("http", listen):
                        problems.append(f"Deployment {name}: {probe} should GET {path} on port http, has {get}")
                envs = {e["name"] for e in c.get("env", [])}
                for ef in c.get("envFrom", []):
                    ref = ef.get("secretRef", {}).get("name")
                    if ref is not None:
                        if ref not in secrets:
                            problems.append(f"Deployment {name}: Secret {ref} is not in the manifests")
                        envs |= secrets.get(ref, set())
                wanted = [k.get("secret_env") for k in conf.get("tokens", {}).get("keys", []) if k.get("secret_env")]
                wanted.append(conf.get("hub", {}).get("admin_token_env", "HUBGATE_ADMIN_TOKEN"))
                for w in wanted:
                    if w not in envs:
                        problems.append(f"Deployment {name}: the config reads ${w}, which no env or Secret provides")
                # Upstreams and Redis: Services of these manifests, with those ports.
                targets = [("apps[%s].upstreams" % a["name"], u) for a in conf.get("apps", []) for u in a.get("upstreams", [])]
                redis = conf.get("session", {}).get("redis_url", "")
                m = re.match(r'rediss?://(?:[^@/]*@)?([^:/]+)(?::(\d+))?', redis)
                if conf.get("session", {}).get("store") == "redis" and m:
                    targets.append(("session.redis_url", f"{m.group(1)}:{m.group(2) or 6379}"))
                for key, addr in targets:
                    svc = services.get(host_of(addr))
                    if svc is None:
                        checked.append(f"{key} {addr} is outside these manifests")
                        continue
                    sp = [p for p in svc["spec"]["ports"] if p["port"] == port_of(addr)]
                    if not sp:
                        problems.append(f"{key}: Service {svc['metadata']['name']} has no port {port_of(addr)}")
                        continue
                    backends = pods_of(svc["spec"].get("selector"))
                    tp = sp[0].get("targetPort", sp[0]["port"])
                    ok = False
                    for b in backends:
                        for bc in b["spec"]["template"]["spec"]["containers"]:
                            for p in bc.get("ports", []):
                                if tp in (p.get("name"), p["containerPort"]):
                                    ok = True
                                    # A demo-apps backend: its own config must bind that port.
                                    bargs = bc.get("args", [])
                                    if "demo" in bargs and "-c" in bargs:
                                        bconf_name = bargs[bargs.index("-c") + 1].rsplit("/", 1)[1]
                                        bconf = toml_loads(next(v for cm in configmaps.values() for k, v in cm.items() if k == bconf_name))
                                        bound = {port_of(a["upstreams"][0]) for a in bconf.get("apps", [])}
                                        if p["containerPort"] not in bound:
                                            problems.append(f"{key}: {b['metadata']['name']} binds no demo app on {p['containerPort']} (binds {sorted(bound)})")
                    if not ok:
                        problems.append(f"{key}: Service {svc['metadata']['name']} port {port_of(addr)} reaches no container port")
                    else:
                        checked.append(f"{key} {addr} -> Service {svc['metadata']['name']}")
    for sname, svc in services.items():
        backends = pods_of(svc["spec"].get("selector"))
        if not backends:
            problems.append(f"Service {sname}: selector matches no Deployment")
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            if not any(tp in (cp.get("name"), cp["containerPort"])
                       for b in backends for c in b["spec"]["template"]["spec"]["containers"] for cp in c.get("ports", [])):
                problems.append(f"Service {sname}: targetPort {tp} is no container port of its pods")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not pods_of(pdb["spec"]["selector"].get("matchLabels")):
            problems.append(f"PodDisruptionBudget {pdb['metadata']['name']}: selector matches no Deployment")
    for np in by_kind.get("NetworkPolicy", []):
        if not pods_of(np["spec"]["podSelector"].get("matchLabels")):
            problems.append(f"NetworkPolicy {np['metadata']['name']}: podSelector matches no Deployment")
    for c in checked:
        print(f"  {c}")
    for p in problems:
        print(f"  PROBLEM: {p}")
    print(f"  {len(deployments)} Deployments, {len(services)} Services cross-checked against their config")
    return 1 if problems else 0


def cmd_compose_consistency(path, repo):
    conf = json.loads(Path(path).read_text())
    services = conf["services"]
    problems, notes = [], []
    keys = set()
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            if v.get("type") == "bind" and not Path(v["source"]).exists():
                problems.append(f"{name}: mounted {v['source']} does not exist")
        cmd = svc.get("command") or []
        if "-c" not in cmd:
            continue
        target = cmd[cmd.index("-c") + 1]
        host_file = None
        for v in svc.get("volumes", []):
            if v.get("type") == "bind" and target.startswith(v["target"].rstrip("/") + "/"):
                host_file = Path(v["source"]) / target[len(v["target"].rstrip("/")) + 1:]
        if host_file is None or not host_file.exists():
            problems.append(f"{name}: {target} is not a mounted file")
            continue
        gw = toml_loads(host_file.read_text())
        if "demo" in cmd:
            bound = [port_of(a["upstreams"][0]) for a in gw.get("apps", [])]
            notes.append(f"{name}: demo apps on {bound}")
            continue
        keys.add(svc.get("environment", {}).get("HUBGATE_KEY_K1"))
        server = gw.get("server", {})
        listen, metrics = server.get("listen", ""), server.get("metrics_listen", "")
        if not listen.startswith("0.0.0.0:") or (metrics and not metrics.startswith("0.0.0.0:")):
            problems.append(f"{name}: listen and metrics_listen must be 0.0.0.0:<port> in a container")
        published = {p["target"] for p in svc.get("ports", [])}
        for port in (port_of(listen), port_of(metrics)):
            if port not in published:
                problems.append(f"{name}: container port {port} is not published")
        for a in gw.get("apps", []):
            for u in a.get("upstreams", []):
                host, port = host_of(u), port_of(u)
                if host not in services:
                    problems.append(f"{name}: apps[{a['name']}] upstream {u}: no service {host}")
                    continue
                up = services[host]
                ucmd = up.get("command") or []
                if "demo" in ucmd:
                    for v in up.get("volumes", []):
                        t = ucmd[ucmd.index("-c") + 1]
                        if t.startswith(v["target"].rstrip("/") + "/"):
                            dconf = toml_loads((Path(v["source"]) / t[len(v["target"].rstrip("/")) + 1:]).read_text())
                            bound = {port_of(x["upstreams"][0]) for x in dconf.get("apps", [])}
                            if port not in bound:
                                problems.append(f"{name}: upstream {u}, but {host} binds demo apps on {sorted(bound)}")
                notes.append(f"{name}: apps[{a['name']}] -> {u}")
        m = re.match(r'rediss?://([^:/]+)(?::(\d+))?', gw.get("session", {}).get("redis_url", ""))
        if gw.get("session", {}).get("store") == "redis":
            if not m or m.group(1) not in services:
                problems.append(f"{name}: session.redis_url host is not a compose service")
            else:
                notes.append(f"{name}: redis_url -> service {m.group(1)}")
        for sect, var in [("tokens", k.get("secret_env")) for k in gw.get("tokens", {}).get("keys", [])]:
            if var and var not in svc.get("environment", {}):
                problems.append(f"{name}: the config reads ${var}, which the service does not set")
    if len(keys) > 1:
        problems.append("the gateways do not share one HUBGATE_KEY_K1")
    prom = Path(repo) / "deploy/prometheus/prometheus.yml"
    pconf = yaml.safe_load(prom.read_text())
    for job in pconf.get("scrape_configs", []):
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                host, port = host_of(t), port_of(t)
                svc = services.get(host)
                if svc is None:
                    problems.append(f"prometheus.yml: target {t} is not a compose service")
                    continue
                cmd = svc.get("command") or []
                gw = toml_loads((Path(repo) / "deploy/compose" / cmd[cmd.index("-c") + 1].rsplit("/", 1)[1]).read_text())
                if port_of(gw["server"].get("metrics_listen", "")) != port:
                    problems.append(f"prometheus.yml: target {t} is not {host}'s metrics_listen")
                else:
                    notes.append(f"prometheus.yml: {t} is {host}'s metrics listener")
    for n in notes:
        print(f"  {n}")
    for p in problems:
        print(f"  PROBLEM: {p}")
    return 1 if problems else 0


def main(argv):
    commands = {"static": cmd_static, "queries": cmd_queries,
                "configmap-toml": cmd_configmap_toml, "promconfig-static": cmd_promconfig_static,
                "k8s-consistency": cmd_k8s_consistency, "compose-consistency": cmd_compose_consistency}
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    return commands[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
