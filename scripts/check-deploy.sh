#!/usr/bin/env bash
# Checks the operator-facing deploy artefacts under deploy/ (deploy/README.md):
#   - promtool check rules / test rules on deploy/prometheus/alerts.yml and its unit tests;
#   - the Grafana dashboard deploy/grafana/mcp-policy.json: valid JSON, unique panel ids, every
#     panel and query on the ${DS_PROMETHEUS} data source, every query filtered by $job and
#     $instance;
#   - every metric name in a rule, a rule test's series or a dashboard query is one of
#     deploy/metrics.txt (with its _bucket/_sum/_count forms for a histogram), or a recording
#     rule of alerts.yml: a metric renamed in the code and in metrics.txt fails here until the
#     rules and the dashboard follow;
#   - every alert has a unit test where it fires and one where it must not.
# Installs nothing. Needs promtool (Debian/Ubuntu: apt-get install prometheus; or the
# prometheus release tarball) and python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[check-deploy] %s\n' "$*" >&2; }

if ! command -v promtool >/dev/null 2>&1; then
  say "promtool not found: install it (Debian/Ubuntu: apt-get install prometheus; or put the"
  say "promtool binary of a Prometheus release from https://prometheus.io/download/ on PATH)"
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  say "python3 not found"
  exit 1
fi

say "promtool check rules"
promtool check rules deploy/prometheus/alerts.yml
say "promtool test rules"
promtool test rules deploy/prometheus/alerts.test.yml

say "metric names, dashboard and test coverage"
python3 - deploy/metrics.txt deploy/prometheus/alerts.yml deploy/prometheus/alerts.test.yml \
  deploy/grafana/mcp-policy.json <<'PY'
import json
import re
import sys

metrics_path, rules_path, tests_path, dash_path = sys.argv[1:5]
errors = []


def err(msg):
    errors.append(msg)


# ---------------------------------------------------------------- known metric names
known = {}  # series name -> metric of metrics.txt it belongs to
metrics = []
with open(metrics_path) as f:
    for n, line in enumerate(f, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"{metrics_path}:{n}"
        if len(parts) != 2 or parts[1] not in ("counter", "gauge", "histogram"):
            err(f"{where}: expected `NAME counter|gauge|histogram`, got {line!r}")
            continue
        name, kind = parts
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            err(f"{where}: {name!r} is not a metric name")
        if name in metrics:
            err(f"{where}: {name} listed twice")
        metrics.append(name)
        if kind == "counter":
            known[name if name.endswith("_total") else name + "_total"] = name
        elif kind == "gauge":
            known[name] = name
        else:
            for suffix in ("_bucket", "_sum", "_count"):
                known[name + suffix] = name
if not metrics:
    err(f"{metrics_path}: no metric listed")

# ---------------------------------------------------------------- a small PromQL reader
FUNCTIONS = set("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month
deg delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase irate
label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time
min_over_time minute month pi predict_linear present_over_time quantile_over_time rad rate
resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt
stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year
sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk
limit_ratio
""".split())
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "atan2", "inf", "nan"}


def metric_names(expr, where):
    """The metric names (and recording-rule names) an expression selects."""
    s = expr
    s = re.sub(r"#[^\n]*", " ", s)                                   # comments
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', s)  # strings
    s = re.sub(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]", " ", s)             # Grafana variables
    s = re.sub(r"\[[^\]]*\]", " ", s)                                 # ranges, subqueries
    s = re.sub(r"\{[^}]*\}", " ", s)                                  # label matchers
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = []
    for m in re.finditer(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            if word not in FUNCTIONS:
                err(f"{where}: unknown PromQL function {word}() in: {expr.strip()}")
            continue
        if word.lower() in KEYWORDS:
            continue
        names.append(word)
    return names


# ---------------------------------------------------------------- rules (YAML, read by line)
# Python's standard library has no YAML reader, so this reads the `record:`, `alert:` and
# `expr:` keys by line: a value on the key's line (plain or quoted) or a block scalar (`|`, `>`).
def yaml_values(path, keys):
    lines = open(path).read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*(?:-\s+)?)(%s):(?:\s+(.*))?$" % "|".join(keys), lines[i])
        if not m:
            i += 1
            continue
        key, col, val = m.group(2), len(m.group(1)), (m.group(3) or "").strip()
        where = f"{path}:{i + 1}"
        i += 1
        if re.fullmatch(r"[|>][-+]?", val):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > col):
                block.append(lines[i].strip())
                i += 1
            val = "\n".join(block).strip()
        elif val.startswith("'"):
            if not val.endswith("'") or len(val) < 2:
                err(f"{where}: cannot read this quoted value; keep it on one line")
            val = val[1:-1].replace("''", "'")
        elif val.startswith('"'):
            try:
                val = json.loads(val)
            except ValueError:
                err(f"{where}: cannot read this quoted value; keep it on one line")
        else:
            val = re.sub(r"\s+#.*$", "", val)
            if i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > col \
                    and not lines[i].lstrip().startswith(("#", "-")):
                err(f"{where}: a multi-line plain value; write it as a block (`{key}: |`)")
        if not val:
            err(f"{where}: empty {key}")
        out.append((key, val, where))
    return out


rules = yaml_values(rules_path, ["record", "alert", "expr"])
records = {v for k, v, _ in rules if k == "record"}
alerts = [v for k, v, _ in rules if k == "alert"]
allowed = set(known) | records
used = set()
for key, val, where in rules:
    if key != "expr":
        continue
    for name in metric_names(val, where):
        if name not in allowed:
            err(f"{where}: unknown metric {name} (not in {metrics_path}, not a recording rule)")
        used.add(known.get(name, name))
if not alerts:
    err(f"{rules_path}: no alert found")

# ---------------------------------------------------------------- rule tests
tests_text = open(tests_path).read()
for key, val, where in yaml_values(tests_path, ["series"]):
    name = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?", val).group(1)
    if name not in allowed:
        err(f"{where}: test series of unknown metric {name}")
fires, quiet = set(), set()
for m in re.finditer(r"alertname:\s*(\S+)\s*\n\s*exp_alerts:[ \t]*(\[\])?", tests_text):
    (quiet if m.group(2) else fires).add(m.group(1))
for a in alerts:
    if a not in fires:
        err(f"{tests_path}: no test where {a} fires (alertname: {a} then exp_alerts with alerts)")
    if a not in quiet:
        err(f"{tests_path}: no test where {a} must not fire (alertname: {a} then exp_alerts: [])")
for a in (fires | quiet) - set(alerts):
    err(f"{tests_path}: tests alert {a}, which {rules_path} does not define")

# ---------------------------------------------------------------- dashboard
try:
    dash = json.load(open(dash_path))
except ValueError as e:
    print(f"{dash_path}: not JSON: {e}", file=sys.stderr)
    sys.exit(1)

DS_UID = "${DS_PROMETHEUS}"


def check_ds(ds, where):
    if not isinstance(ds, dict) or ds.get("type") != "prometheus" or ds.get("uid") != DS_UID:
        err(f"{where}: datasource must be {{\"type\": \"prometheus\", \"uid\": \"{DS_UID}\"}}, got {ds!r}")


if dash.get("schemaVersion") != 39:
    err(f"{dash_path}: schemaVersion {dash.get('schemaVersion')!r}, expected 39")
if not any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus" for i in dash.get("__inputs", [])):
    err(f"{dash_path}: no DS_PROMETHEUS data source in __inputs")
variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource":
    err(f"{dash_path}: no DS_PROMETHEUS data source variable")
for name in ("job", "instance"):
    v = variables.get(name)
    if not v:
        err(f"{dash_path}: no templating variable {name}")
        continue
    check_ds(v.get("datasource"), f"{dash_path}: variable {name}")
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q, re.S)
    if not m:
        err(f"{dash_path}: variable {name}: expected a label_values(...) query, got {q!r}")
        continue
    for metric in metric_names(m.group(1), f"{dash_path}: variable {name}"):
        if metric not in known:
            err(f"{dash_path}: variable {name}: unknown metric {metric}")
        used.add(known.get(metric, metric))


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


ids = {}
panels = list(all_panels(dash.get("panels", [])))
if not panels:
    err(f"{dash_path}: no panels")
for p in panels:
    title = p.get("title", "?")
    where = f"{dash_path}: panel {p.get('id')!r} {title!r}"
    pid = p.get("id")
    if not isinstance(pid, int):
        err(f"{where}: no integer id")
    elif pid in ids:
        err(f"{where}: id {pid} also used by panel {ids[pid]!r}")
    else:
        ids[pid] = title
    check_ds(p.get("datasource"), where)
    if p.get("type") == "row":
        continue
    targets = p.get("targets") or []
    if not targets:
        err(f"{where}: no query")
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs) or None in refs:
        err(f"{where}: refIds missing or repeated: {refs}")
    for t in targets:
        tw = f"{where} query {t.get('refId')}"
        if "datasource" in t:
            check_ds(t["datasource"], tw)
        expr = t.get("expr", "")
        names = metric_names(expr, tw)
        if not names:
            err(f"{tw}: no metric in {expr!r}")
        for name in names:
            if name not in known:
                err(f"{tw}: unknown metric {name} (not in {metrics_path})")
                continue
            used.add(known[name])
            for sel in re.finditer(r"(?<![\w:])%s(?![\w:])\s*(\{[^}]*\})?" % re.escape(name), expr):
                labels = sel.group(1) or ""
                if 'job=~"$job"' not in labels or 'instance=~"$instance"' not in labels:
                    err(f'{tw}: {name} selected without job=~"$job",instance=~"$instance"')

unused = [m for m in metrics if m not in used]
if unused:
    print("[check-deploy] note: in neither the rules nor the dashboard: " + ", ".join(unused),
          file=sys.stderr)

if errors:
    for e in errors:
        print("[check-deploy] " + e, file=sys.stderr)
    print(f"[check-deploy] FAILED: {len(errors)} problem(s)", file=sys.stderr)
    sys.exit(1)
print(f"[check-deploy] OK: {len(metrics)} metrics, {len(rules) - len(alerts) - len(records)} rule "
      f"expressions ({len(alerts)} alerts, {len(records)} recording rules), {len(panels)} panels")
PY
