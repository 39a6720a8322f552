"""What the rendered chart, the compose file and the Dockerfile must contain.

Expectations are computed from the merged values of each scenario, so every values set is held
to the same promises: one hardened, probed Deployment per enabled role, the migration hook, the
NetworkPolicies, and autoscaling objects that point at the right Deployment and JetStream names.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CAPABILITIES = {
    "image": "image.generate",
    "inpaint": "image.inpaint",
    "upscale": "image.upscale",
    "video": "video.generate",
    "slides": "video.slides",
}
# Ranges the internet egress rule must exclude (DESIGN §7; the cloud metadata address).
BLOCKED_IPV4 = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"}
METADATA_IPV4 = "169.254.169.254"


def job_stream(prefix: str, capability: str) -> str:
    """services/kit/src/nats.rs `Names::job_stream`."""
    return f"{prefix.upper().replace('-', '_')}_JOBS_{capability.replace('.', '_').upper()}"


def job_consumer(prefix: str, capability: str) -> str:
    """services/kit/src/nats.rs `Names::durable(\"worker.<capability>\")`."""
    return f"{prefix}_worker_{capability.replace('.', '_')}"


def expected_roles(values: dict) -> dict[str, dict]:
    """component -> {args, service, values, kind, deps} for every role that should run."""
    roles = {
        "api": {"args": ["api"], "service": "api-service", "values": values["api"], "kind": "api",
                "deps": {"nats", "postgresql", "s3", "otlp"}},
        "webhook": {"args": ["webhook"], "service": "webhook-service", "values": values["webhook"],
                    "kind": "webhook", "deps": {"nats", "postgresql", "otlp"}},
    }
    for key, worker in sorted(values["workers"].items()):
        if worker.get("enabled"):
            roles[f"{key}-worker"] = {"args": ["worker", key], "service": f"{key}-worker",
                                      "values": worker, "kind": "worker", "key": key,
                                      "deps": {"nats", "s3", "otlp"}}
    return roles


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o.get("kind") == kind}


def component(obj: dict) -> str:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")


def check_all(failures, scenario: str, values: dict, objects: list[dict], release: str, namespace: str) -> None:
    roles = expected_roles(values)
    deployments = {component(d): d for d in by_kind(objects, "Deployment").values()}
    failures.check(
        set(deployments) == set(roles),
        f"{scenario}: Deployments {sorted(deployments)} != enabled roles {sorted(roles)}",
    )
    for name, role in roles.items():
        if name in deployments:
            check_deployment(failures, f"{scenario}: {name}", deployments[name], role, values)
    check_autoscaling(failures, scenario, objects, roles, values)
    check_migration(failures, scenario, objects, values)
    check_network_policies(failures, scenario, objects, roles, values)
    check_secrets(failures, scenario, objects, values)
    ingress = by_kind(objects, "Ingress")
    failures.check(
        bool(ingress) == bool(values["api"]["ingress"]["enabled"]),
        f"{scenario}: Ingress present={bool(ingress)} but api.ingress.enabled={values['api']['ingress']['enabled']}",
    )
    for ing in ingress.values():
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]["name"]
                failures.check(backend.endswith("-api"), f"{scenario}: Ingress routes to {backend}, not the api")
    for kind, key in (("ServiceMonitor", "serviceMonitor"), ("PrometheusRule", "prometheusRule")):
        present = bool(by_kind(objects, kind))
        failures.check(
            present == bool(values["metrics"][key]["enabled"]),
            f"{scenario}: {kind} present={present} but metrics.{key}.enabled={values['metrics'][key]['enabled']}",
        )


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def check_deployment(failures, label: str, deployment: dict, role: dict, values: dict) -> None:
    pod = deployment["spec"]["template"]["spec"]
    containers = pod["containers"]
    failures.check(len(containers) == 1, f"{label}: {len(containers)} containers")
    container = containers[0]
    failures.check(container.get("args") == role["args"], f"{label}: args {container.get('args')} != {role['args']}")
    env = env_of(container)
    service = env.get("OTEL_SERVICE_NAME", {}).get("value")
    failures.check(service == role["service"], f"{label}: OTEL_SERVICE_NAME {service!r} != {role['service']!r}")
    if values["otel"]["enabled"]:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", {}).get("value")
        failures.check(endpoint == values["otel"]["endpoint"], f"{label}: OTEL_EXPORTER_OTLP_ENDPOINT {endpoint!r}")

    # ATELIER_HTTP_ADDR, the container port and the probes are one port.
    addr = env.get("ATELIER_HTTP_ADDR", {}).get("value", "")
    failures.check(addr.startswith(("0.0.0.0:", "[::]:")), f"{label}: ATELIER_HTTP_ADDR {addr!r} is not a wildcard bind")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    addr_port = int(addr.rsplit(":", 1)[-1]) if addr.rsplit(":", 1)[-1].isdigit() else None
    failures.check(ports.get("http") == addr_port, f"{label}: container port {ports.get('http')} != ATELIER_HTTP_ADDR port {addr_port}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        port = get.get("port")
        port = ports.get(port) if isinstance(port, str) else port
        failures.check(get.get("path") == path and port == addr_port, f"{label}: {probe} is not GET {path} on port {addr_port}")

    resources = container.get("resources", {})
    failures.check(resources.get("requests") and resources.get("limits"), f"{label}: resources need requests and limits")

    autoscaled = role["values"]["autoscaling"]["enabled"] or role["values"].get("keda", {}).get("enabled")
    if autoscaled:
        failures.check("replicas" not in deployment["spec"], f"{label}: replicas set although an autoscaler owns them")
    else:
        failures.check(deployment["spec"].get("replicas") == role["values"]["replicas"], f"{label}: replicas != values")
    check_hardened(failures, label, pod, container)


def check_hardened(failures, label: str, pod: dict, container: dict) -> None:
    pod_sc = pod.get("securityContext", {})
    sc = container.get("securityContext", {})
    failures.check(pod_sc.get("runAsNonRoot") is True, f"{label}: pod runAsNonRoot is not true")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    failures.check(seccomp == "RuntimeDefault", f"{label}: seccompProfile {seccomp!r}")
    failures.check(sc.get("readOnlyRootFilesystem") is True, f"{label}: readOnlyRootFilesystem is not true")
    failures.check(sc.get("allowPrivilegeEscalation") is False, f"{label}: allowPrivilegeEscalation is not false")
    failures.check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{label}: capabilities do not drop ALL")
    failures.check(pod.get("automountServiceAccountToken") is False, f"{label}: service account token is mounted")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tmp = volumes.get(mounts.get("/tmp", ""), {})
    failures.check("emptyDir" in tmp, f"{label}: /tmp is not an emptyDir")


def check_autoscaling(failures, scenario: str, objects: list[dict], roles: dict, values: dict) -> None:
    hpas = {component(h): h for h in by_kind(objects, "HorizontalPodAutoscaler").values()}
    pdbs = {component(p): p for p in by_kind(objects, "PodDisruptionBudget").values()}
    scaled = {component(s): s for s in by_kind(objects, "ScaledObject").values()}
    deployments = {component(d): d["metadata"]["name"] for d in by_kind(objects, "Deployment").values()}
    prefix = values["config"].get("ATELIER_NATS_PREFIX") or "atelier"
    for name, role in roles.items():
        v = role["values"]
        failures.check((name in pdbs) == bool(v["pdb"]["enabled"]), f"{scenario}: {name} PodDisruptionBudget present={name in pdbs}, pdb.enabled={v['pdb']['enabled']}")
        failures.check((name in hpas) == bool(v["autoscaling"]["enabled"]), f"{scenario}: {name} HPA present={name in hpas}, autoscaling.enabled={v['autoscaling']['enabled']}")
        if name in hpas:
            target = hpas[name]["spec"]["scaleTargetRef"]["name"]
            failures.check(target == deployments.get(name), f"{scenario}: {name} HPA targets {target}")
        keda = bool(v.get("keda", {}).get("enabled"))
        failures.check((name in scaled) == keda, f"{scenario}: {name} ScaledObject present={name in scaled}, keda.enabled={keda}")
        if name in scaled:
            spec = scaled[name]["spec"]
            failures.check(spec["scaleTargetRef"]["name"] == deployments.get(name), f"{scenario}: {name} ScaledObject target")
            trigger = spec["triggers"][0]
            capability = CAPABILITIES[role["key"]]
            meta = trigger["metadata"]
            failures.check(trigger["type"] == "nats-jetstream", f"{scenario}: {name} trigger type {trigger['type']}")
            failures.check(meta["stream"] == job_stream(prefix, capability), f"{scenario}: {name} stream {meta['stream']} != {job_stream(prefix, capability)}")
            failures.check(meta["consumer"] == job_consumer(prefix, capability), f"{scenario}: {name} consumer {meta['consumer']} != {job_consumer(prefix, capability)}")
            failures.check(all(isinstance(x, str) for x in meta.values()), f"{scenario}: {name} trigger metadata must be strings")


def check_migration(failures, scenario: str, objects: list[dict], values: dict) -> None:
    jobs = [j for j in by_kind(objects, "Job").values() if component(j) == "migrate"]
    enabled = values["migrations"]["enabled"]
    failures.check(len(jobs) == (1 if enabled else 0), f"{scenario}: {len(jobs)} migration Jobs, migrations.enabled={enabled}")
    for job in jobs:
        hooks = set(job["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(","))
        failures.check({"pre-install", "pre-upgrade"} <= hooks, f"{scenario}: migration Job hooks {sorted(hooks)}")
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        failures.check(container.get("args") == ["migrate"], f"{scenario}: migration Job args {container.get('args')}")
        failures.check(pod.get("restartPolicy") == "Never", f"{scenario}: migration Job restartPolicy")
        check_hardened(failures, f"{scenario}: migration Job", pod, container)
        # Hooks run before the release's objects exist: only hook objects or an existing Secret.
        ref = env_of(container)["ATELIER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
        hook_secrets = {
            s["metadata"]["name"] for s in by_kind(objects, "Secret").values()
            if "pre-install" in s["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        }
        failures.check(
            ref == values["secrets"]["existingSecret"] or ref in hook_secrets,
            f"{scenario}: migration Job reads Secret {ref}, which does not exist before install",
        )


def check_network_policies(failures, scenario: str, objects: list[dict], roles: dict, values: dict) -> None:
    policies = {component(p): p for p in by_kind(objects, "NetworkPolicy").values()}
    np = values["networkPolicy"]
    if not np["enabled"]:
        failures.check(not policies, f"{scenario}: NetworkPolicies rendered although disabled")
        return
    failures.check(set(policies) == set(roles), f"{scenario}: NetworkPolicies {sorted(policies)} != roles {sorted(roles)}")
    deps = np["dependencies"]
    for name, policy in policies.items():
        label = f"{scenario}: NetworkPolicy {name}"
        spec = policy["spec"]
        failures.check({"Ingress", "Egress"} <= set(spec.get("policyTypes", [])), f"{label}: policyTypes {spec.get('policyTypes')}")
        egress = spec.get("egress") or []
        # A rule without peers allows every destination, private ranges included.
        failures.check(all(rule.get("to") for rule in egress), f"{label}: an egress rule has no `to`")
        peers = [peer for rule in egress for peer in rule.get("to", [])]
        if np["internet"]["enabled"]:
            internet = [p["ipBlock"] for p in peers if p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0"]
            failures.check(len(internet) == 1, f"{label}: {len(internet)} 0.0.0.0/0 rules")
            for block in internet:
                excepted = set(block.get("except", []))
                failures.check(BLOCKED_IPV4 <= excepted, f"{label}: internet rule does not exclude {sorted(BLOCKED_IPV4 - excepted)}")
                failures.check(
                    any(e in (f"{METADATA_IPV4}/32", "169.254.0.0/16") for e in excepted),
                    f"{label}: internet rule does not exclude {METADATA_IPV4}",
                )
        for dep, rule_for in deps.items():
            wanted = rule_for["to"]
            needed = dep in roles.get(name, {}).get("deps", set())
            present = bool(wanted) and any(rule.get("to") == wanted for rule in egress)
            # Least privilege: e.g. workers never reach PostgreSQL.
            failures.check(present == (needed and bool(wanted)), f"{label}: egress rule to {dep} present={present}, needed={needed}")


def check_secrets(failures, scenario: str, objects: list[dict], values: dict) -> None:
    existing = values["secrets"]["existingSecret"]
    plain = [s for s in by_kind(objects, "Secret").values() if "helm.sh/hook" not in s["metadata"].get("annotations", {})]
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for d in by_kind(objects, "Deployment").values()
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    if existing:
        failures.check(not plain and not [s for s in by_kind(objects, "Secret").values()], f"{scenario}: Secrets rendered although existingSecret is set")
        failures.check(refs == {existing}, f"{scenario}: Deployments read Secrets {sorted(refs)}, not {existing}")
    else:
        names = {s["metadata"]["name"] for s in plain}
        failures.check(len(plain) == 1 and refs == names, f"{scenario}: Deployments read {sorted(refs)}, chart Secrets {sorted(names)}")


def check_compose_and_dockerfile(failures, repo: Path) -> None:
    """The parts of the container files that can be checked without a Docker engine."""
    compose = yaml.safe_load((repo / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    services = compose.get("services", {})
    for dependency in ("nats", "postgres", "minio", "jaeger"):
        failures.check(dependency in services, f"compose: no {dependency} service")
    commands = {name: s.get("command") for name, s in services.items() if str(s.get("image", "")).startswith("atelier")}
    for wanted in (["migrate"], ["api"], ["webhook"], ["worker", "upscale"]):
        failures.check(wanted in commands.values(), f"compose: no Atelier service runs `atelier {' '.join(wanted)}`")
    for name, service in services.items():
        if name not in commands:
            continue
        env = service.get("environment", {})
        failures.check(env.get("ATELIER_HTTP_ADDR") == "0.0.0.0:8080", f"compose: {name} ATELIER_HTTP_ADDR {env.get('ATELIER_HTTP_ADDR')!r}")
        failures.check(bool(env.get("OTEL_SERVICE_NAME")), f"compose: {name} has no OTEL_SERVICE_NAME")
        failures.check(service.get("read_only") is True and "ALL" in service.get("cap_drop", []), f"compose: {name} is not read-only with all capabilities dropped")

    dockerfile = (repo / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    users = [line.split(None, 1)[1] for line in instructions if line.upper().startswith("USER ")]
    failures.check(bool(users) and users[-1].split(":")[0] not in ("root", "0"), f"Dockerfile: final USER {users[-1:] or 'missing'} is root")
    failures.check(sum(line.upper().startswith("FROM ") for line in instructions) >= 2, "Dockerfile: not multi-stage")
    failures.check("cargo build --release" in dockerfile and "-p atelier-cli" in dockerfile, "Dockerfile: does not build -p atelier-cli in release")
    failures.check("ffmpeg" in dockerfile, "Dockerfile: no ffmpeg")
    failures.check("espeak-ng" in dockerfile, "Dockerfile: no espeak-ng (the slides worker narrates with it)")
    failures.check('ENTRYPOINT ["/usr/local/bin/atelier"]' in dockerfile, "Dockerfile: ENTRYPOINT is not the atelier binary")
