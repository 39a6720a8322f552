"""Chart and deployment checks, run by deploy/test.sh through deploy/checks/run.sh.

Lints helm/atelier, renders it with several values sets, validates every rendered object
strictly against Kubernetes 1.30, asserts the properties the deployment promises (one hardened,
probed Deployment per enabled role, the migration hook, the NetworkPolicies, autoscaling), checks
that the schema rejects wrong types, that every value is documented, and that every `ATELIER_*`
name the Dockerfile, compose file and chart set is one the code reads. Offline: Helm's own Go
SDK (helm-python-sdk) renders, no cluster or network is involved.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

import config_names
import expectations
import observability

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "atelier"
KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "demo", "atelier"

# Settings the chart sets itself, and the ones that come only from the Secret.
CHART_OWNED = {"ATELIER_HTTP_ADDR"}
SECRET_SETTINGS = {
    "ATELIER_DATABASE_URL",
    "ATELIER_API_KEYS",
    "ATELIER_WEBHOOK_SECRET",
    "ATELIER_OPENAI_API_KEY",
    "ATELIER_ARK_API_KEY",
    "ATELIER_GEMINI_API_KEY",
    "ATELIER_JIMENG_ACCESS_KEY",
    "ATELIER_JIMENG_SECRET_KEY",
}

# Custom resources have no schema among Kubernetes' own: they are skipped by name, and any
# other kind without a schema fails the check.
CRD_KINDS = {"ScaledObject", "ServiceMonitor", "PrometheusRule"}

# A wrong value of each kind of constraint; every one must be refused by values.schema.json.
REJECTED_VALUES = [
    {"api": {"replicas": "two"}},
    {"workers": {"upscale": {"replicas": -1}}},
    {"workers": {"upscale": {"enabled": "yes"}}},
    {"workers": {"gpu": {"enabled": True}}},
    {"config": {"ATELIER_NOT_A_SETTING": "x"}},
    {"config": {"ATELIER_WORKER_SLOTS": 4}},
    {"config": {"ATELIER_NATS_PREFIX": "has.dots"}},
    {"http": {"port": 70000}},
    {"networkPolicy": {"enabled": "true"}},
    {"unknownTopLevelKey": {}},
]


class Failures:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.messages.append(message)


def load_values(name: str) -> dict:
    return yaml.safe_load((CHART / "ci" / name).read_text(encoding="utf-8")) or {}


def scenarios() -> dict[str, dict]:
    """Values sets to render: the defaults, the CI files, and every worker enabled."""
    all_workers = {"workers": {k: {"enabled": True} for k in ("image", "inpaint", "upscale", "video", "slides")}}
    sets = {"defaults": {}}
    for path in sorted((CHART / "ci").glob("*.yaml")):
        sets[path.name] = load_values(path.name)
    sets["all-workers"] = all_workers
    return sets


def lint(failures: Failures, name: str, values: dict) -> None:
    report = helm.lint(str(CHART), values, strict=True, kube_version="v" + KUBE_VERSION)
    for error in report.get("errors") or []:
        failures.check(False, f"lint ({name}): {error}")
    for message in report.get("messages") or []:
        # Severity 1 is informational (e.g. "icon is recommended").
        failures.check(
            message["severity"] < 2,
            f"lint ({name}): {message['path']}: {message['error']}",
        )


def render(chart: helm.Chart, values: dict) -> tuple[list[dict], str]:
    """The rendered objects (NOTES.txt left out) and the whole rendered text."""
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects, texts = [], []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        texts.append(text)
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects, "\n".join(texts)


def validate(failures: Failures, name: str, objects: list[dict], skipped: set[str]) -> None:
    for obj in objects:
        kind = obj.get("kind", "?")
        label = f"{name}: {kind}/{obj.get('metadata', {}).get('name', '?')}"
        if kind in CRD_KINDS:
            skipped.add(kind)
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            failures.check(False, f"kubernetes-validate {label}: {path}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            failures.check(False, f"kubernetes-validate {label}: no schema: {err.message}")


def schema_rejects(failures: Failures, chart: helm.Chart) -> None:
    chart.validate_schema({})
    for values in REJECTED_VALUES:
        try:
            chart.render(values, name=RELEASE, namespace=NAMESPACE)
        except helm.HelmValuesError:
            continue
        failures.check(False, f"values.schema.json accepted {values}")


def leaf_paths(value: object, prefix: str = "") -> list[str]:
    """Dotted paths of the values: maps are walked into, lists and empty maps are leaves."""
    if isinstance(value, dict) and value:
        paths = []
        for key, child in value.items():
            paths.extend(leaf_paths(child, f"{prefix}.{key}" if prefix else str(key)))
        return paths
    return [prefix]


def documented(failures: Failures) -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for path in leaf_paths(values):
        # helm-docs style: a row documents its key and, for a map such as `api.resources`,
        # everything under it.
        parts = path.split(".")
        rows = [f"| `{'.'.join(parts[:n])}` |" for n in range(len(parts), 0, -1)]
        failures.check(any(row in readme for row in rows), f"helm/atelier/README.md does not document `{path}`")


def config_names_check(failures: Failures, rendered_text: str) -> None:
    read = config_names.names_read_by_code(REPO)
    failures.check(len(read) >= 10, f"found only {len(read)} ATELIER_* names in services/*/src")
    for name, files in sorted(config_names.names_in_files(config_names.deployment_files(REPO)).items()):
        where = ", ".join(str(f.relative_to(REPO)) for f in sorted(files))
        failures.check(name in read, f"{name} (in {where}) is not read by the code")
    for name in sorted(config_names.names_in_text(rendered_text) - read):
        failures.check(False, f"{name} appears in the rendered chart but is not read by the code")
    # The other direction: every setting the code reads can be set through the chart's
    # `config` / `env` maps, unless the chart sets it itself or it is a secret.
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    settable = set(schema["definitions"]["settings"]["properties"])
    for name in sorted(read - settable - CHART_OWNED - SECRET_SETTINGS):
        failures.check(
            False,
            f"{name} is read by the code but helm/atelier/values.schema.json "
            "(definitions.settings) does not accept it: add it there",
        )


def main() -> int:
    started = time.monotonic()
    failures = Failures()
    skipped: set[str] = set()
    rendered_text = []
    with helm.Chart.load(str(CHART)) as chart:
        for name, values in scenarios().items():
            lint(failures, name, values)
            objects, text = render(chart, values)
            rendered_text.append(text)
            validate(failures, name, objects, skipped)
            merged = chart.merge_values(values)
            expectations.check_all(failures, name, merged, objects, RELEASE, NAMESPACE)
            print(f"rendered {name}: {len(objects)} objects")
        schema_rejects(failures, chart)
        rules, _ = render(chart, {"metrics": {"prometheusRule": {"enabled": True}}})
        rendered_rules = [
            rule
            for obj in rules
            if obj.get("kind") == "PrometheusRule"
            for group in obj["spec"]["groups"]
            for rule in group["rules"]
        ]
    observability.check(failures, REPO, rendered_rules)
    documented(failures)
    config_names_check(failures, "\n".join(rendered_text))
    expectations.check_compose_and_dockerfile(failures, REPO)
    if skipped:
        print(
            "not validated against Kubernetes schemas (custom resources, no core schema): "
            + ", ".join(sorted(skipped))
        )
    elapsed = time.monotonic() - started
    if failures.messages:
        for message in failures.messages:
            print(f"FAIL {message}", file=sys.stderr)
        print(f"chart checks: {len(failures.messages)} failure(s) in {elapsed:.1f}s", file=sys.stderr)
        return 1
    print(f"chart checks passed in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
