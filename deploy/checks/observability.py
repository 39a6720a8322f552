"""Observability artefacts agree with the code and with each other.

- Every metric that deploy/observability/alerts.yaml, the Grafana dashboard and the chart's
  PrometheusRule name is one the roles export (registered in services/kit/src/metrics.rs),
  with the suffix its type gets (`_total` for counters, `_bucket`/`_count`/`_sum` for
  histograms).
- The chart's PrometheusRule, rendered with its default thresholds, holds exactly the rules of
  alerts.yaml (the same alerts, expressions and `for`), so a plain Prometheus and the operator
  alert alike.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REGISTERED = re.compile(r'register\(\s*"(atelier_[a-z_]+)"', re.S)
FAMILY = re.compile(r"(\w+): Family<Labels, (Counter|Gauge|Histogram)")
METRIC = re.compile(r"\batelier_[a-z_]+")


def exported_names(repo: Path) -> set[str]:
    """The sample names the registry exposes."""
    source = (repo / "services/kit/src/metrics.rs").read_text(encoding="utf-8")
    kinds = {field: kind for field, kind in FAMILY.findall(source)}
    names: set[str] = set()
    for match in re.finditer(r'register\(\s*"(atelier_[a-z_]+)",\s*"[^"]*",\s*metrics\.(\w+)', source, re.S):
        name, field = match.groups()
        kind = kinds.get(field, "Gauge")
        if kind == "Counter":
            names.add(name + "_total")
        elif kind == "Histogram":
            names.update(name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(name)
    return names


def normalise(expr: str) -> str:
    """An expression without the chart's namespace matcher and without spacing."""
    expr = re.sub(r'namespace="[^"]*",?', "", expr)
    expr = expr.replace("{}", "")
    return re.sub(r"\s+", "", expr)


def check(failures, repo: Path, rendered_rules: list[dict]) -> None:
    exported = exported_names(repo)
    failures.check(len(exported) > 10, f"no metrics found in services/kit/src/metrics.rs: {exported}")
    alerts = yaml.safe_load((repo / "deploy/observability/alerts.yaml").read_text(encoding="utf-8"))
    standalone = [rule for group in alerts["groups"] for rule in group["rules"]]
    dashboard = json.loads((repo / "deploy/observability/grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [("alerts.yaml " + r["alert"], r["expr"]) for r in standalone]
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append((f"dashboard panel {panel['title']!r}", target["expr"]))
    for rule in rendered_rules:
        exprs.append(("chart PrometheusRule " + rule["alert"], rule["expr"]))
    for where, expr in exprs:
        for name in METRIC.findall(expr):
            failures.check(name in exported, f"{where}: {name} is not a metric the roles export")

    failures.check(bool(rendered_rules), "the chart rendered no PrometheusRule with prometheusRule.enabled")
    chart = {r["alert"]: r for r in rendered_rules}
    plain = {r["alert"]: r for r in standalone}
    failures.check(
        chart.keys() == plain.keys(),
        f"alerts differ: chart {sorted(chart)} vs alerts.yaml {sorted(plain)}",
    )
    for name in chart.keys() & plain.keys():
        failures.check(
            normalise(chart[name]["expr"]) == normalise(plain[name]["expr"]),
            f"{name}: chart expr {chart[name]['expr']!r} differs from alerts.yaml {plain[name]['expr']!r}",
        )
        failures.check(
            chart[name].get("for") == plain[name].get("for"),
            f"{name}: `for` differs between the chart and alerts.yaml",
        )
