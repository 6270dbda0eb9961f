"""What `kompose convert --with-kompose-annotation=false --out DIR` (v1.37.0) writes for a compose
file, for the compose keys this project uses; anything else is refused, never guessed.

kompose cannot run here (it ships as release binaries only), so this model follows its source at
tag v1.37.0 rule by rule, with file:line, and tests/k8s/kompose_fixtures/ pins it to the output
shapes of kompose's own test fixtures (script/test/fixtures/*/output-k8s.yaml). The public
workflow regenerates k8s/base with the real binary and diffs it, which checks this model too.

    python -m tests.k8s.kompose_model --file compose.yaml --out DIR   # what the fake kompose runs
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import yaml

# Keys that change nothing in kompose's Deployment/Service output, or that kompose reads and this
# model implements. Any other key is refused: the model would have to learn it first.
IGNORED = {"build", "depends_on", "init", "security_opt", "profiles", "stop_signal"}
MODELLED = {
    "image",
    "ports",
    "expose",
    "environment",
    "healthcheck",
    "labels",
    "deploy",
    "tmpfs",
    "read_only",
    "cap_drop",
    "cap_add",
    "restart",
    "stop_grace_period",
}
LABEL = "kompose.service.healthcheck."
KNOWN_LABELS = (
    {"kompose.service.type", "kompose.image-pull-policy"}
    | {
        f"{LABEL}{kind}.{key}"
        for kind in ("readiness", "liveness")
        for key in ("http_get_path", "http_get_port", "tcp_port")
    }
    | {f"{LABEL}readiness.{key}" for key in ("interval", "timeout", "retries", "start_period")}
)
SERVICE_TYPES = {"clusterip": "ClusterIP", "nodeport": "NodePort", "loadbalancer": "LoadBalancer"}
PULL_POLICIES = {"Always", "Never", "IfNotPresent"}
UNITS = {"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30}


class Unmodelled(ValueError):
    """compose.yaml uses something this model does not know kompose's output for."""


def interpolate(value: Any) -> Any:
    """compose-go's ${VAR:-default} with an empty environment, as the regenerate job runs it. It
    substitutes in the strings of the loaded document (compose-go v2.8.1 loader/loader.go:438,
    interpolation/interpolation.go:72-87), so `${URL_FETCH:-off}` stays the string "off" and
    `${X:-}` the empty string (no caster applies to environment values, loader/interpolate.go)."""

    def substitute(match: re.Match) -> str:
        if match.group(2) is None:
            raise Unmodelled(f"${{{match.group(1)}}} has no default: kompose's output would depend on the environment")
        return match.group(2)

    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", substitute, value)
    return value


def seconds(duration: str) -> int:
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(duration))
    if not parts or not any(parts.groups()):
        raise Unmodelled(f"duration {duration!r}")
    return int(parts.group(1) or 0) * 60 + int(parts.group(2) or 0)


def memory_bytes(size: str) -> int:
    parts = re.fullmatch(r"(\d+)([a-zA-Z]*)", str(size))
    if not parts or parts.group(2).lower() not in UNITS | {"": 1}:
        raise Unmodelled(f"memory size {size!r}")
    return int(parts.group(1)) * (UNITS | {"": 1})[parts.group(2).lower()]


def decimal_exponent(value: int) -> str:
    """resource.NewQuantity(n, "RandomStringForFormat") falls back to DecimalExponent (k8sutils.go:820):
    the largest power of 1000 that divides n, e.g. 10485760000 -> "10485760e3" (fixture v2)."""
    exponent = 0
    while value and value % 1000 == 0:
        value, exponent = value // 1000, exponent + 3
    return f"{value}e{exponent}" if exponent else str(value)


def millicores(cpus: str) -> str:
    milli = round(float(cpus) * 1000)  # NanoCPUs * 1000, then NewMilliQuantity(.., DecimalSI) (k8sutils.go:824)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def probe(handler: dict, timeout: int = 0, interval: int = 0, retries: int = 0, start: int = 0) -> dict:
    """configProbe (podspec.go:302-340): a test wins over http_get, http_get over tcp; zeros are omitted."""
    fields = {
        "timeoutSeconds": timeout,
        "periodSeconds": interval,
        "failureThreshold": retries,
        "initialDelaySeconds": start,
    }
    return {**handler, **{key: value for key, value in fields.items() if value}}


def liveness(healthcheck: dict | None, labels: dict[str, str]) -> dict | None:
    """parseHealthCheck (compose.go:394-453): only a compose healthcheck makes a liveness probe; its
    test (without CMD/CMD-SHELL) wins over the liveness http_get/tcp labels (podspec.go:309-321)."""
    if not healthcheck or healthcheck.get("disable"):
        return None
    test = healthcheck.get("test")
    if isinstance(test, str) or (test and test[0] not in ("CMD", "CMD-SHELL")):
        raise Unmodelled(f"healthcheck test {test!r}: use the CMD list form")
    timing = {
        "timeout": seconds(healthcheck.get("timeout", "0s")),
        "interval": seconds(healthcheck.get("interval", "0s")),
        "retries": int(healthcheck.get("retries", 0)),
        "start": seconds(healthcheck.get("start_period", "0s")),
    }
    if test:
        return probe({"exec": {"command": list(test[1:])}}, **timing)
    return handler_from_labels(labels, "liveness", timing)


def handler_from_labels(labels: dict[str, str], kind: str, timing: dict) -> dict | None:
    path, port = labels.get(f"{LABEL}{kind}.http_get_path"), labels.get(f"{LABEL}{kind}.http_get_port")
    tcp = labels.get(f"{LABEL}{kind}.tcp_port")
    if path and port:
        return probe({"httpGet": {"path": path, "port": int(port)}}, **timing)
    if tcp:
        return probe({"tcpSocket": {"port": int(tcp)}}, **timing)
    if any(timing.values()):
        raise Unmodelled(f"{kind} timing labels without a handler make kompose panic (podspec.go:329)")
    return None


def readiness(labels: dict[str, str]) -> dict | None:
    """parseHealthCheckReadiness (compose.go:322-388): from the readiness labels only."""
    key = f"{LABEL}readiness."
    timing = {
        "timeout": seconds(labels.get(key + "timeout", "0s")),
        "interval": seconds(labels.get(key + "interval", "0s")),
        "retries": int(labels.get(key + "retries", 0)),
        "start": seconds(labels.get(key + "start_period", "0s")),
    }
    return handler_from_labels(labels, "readiness", timing)


def ports(service: dict) -> list[tuple[int, int]]:
    """loadPorts (compose.go:280-317): (published or target, target), ports then expose, deduplicated."""
    found: list[tuple[int, int]] = []
    for port in service.get("ports", []):
        parts = str(port).split(":")
        if "/" in parts[-1] or len(parts) > 2:
            raise Unmodelled(f"port {port!r}: use HOST:CONTAINER or CONTAINER, TCP")
        target = int(parts[-1])
        found.append((int(parts[0]) if len(parts) == 2 else target, target))
    targets = {target for _, target in found}
    found += [(int(p), int(p)) for p in service.get("expose", []) if int(p) not in targets]
    return found


def key_values(mapping: dict | list | None) -> dict[str, str]:
    """A compose map in either form: {key: value} or ["key=value"]; sorted by name (EnvSort,
    kubernetes.go:1241)."""
    if isinstance(mapping, list):
        mapping = dict(item.split("=", 1) for item in mapping)
    return {key: str(value) for key, value in (mapping or {}).items()}


def convert_service(name: str, service: dict) -> dict[str, dict]:
    unknown = set(service) - IGNORED - MODELLED
    if unknown or service.get("volumes"):
        raise Unmodelled(f"{name}: {sorted(unknown) or 'volumes'} (volumes would add PVCs and strategy Recreate)")
    labels = key_values(service.get("labels"))
    unknown_labels = {key for key in labels if key.startswith("kompose.")} - KNOWN_LABELS
    if unknown_labels:
        raise Unmodelled(f"{name}: labels {sorted(unknown_labels)}")
    if service.get("restart", "always") not in ("always", "unless-stopped"):
        raise Unmodelled(f"{name}: restart {service['restart']!r} makes kompose write a Pod (kubernetes.go:1692)")
    # --with-kompose-annotation=false drops every kompose.* key, labels included (utils.go:249-279).
    annotations = {key: value for key, value in labels.items() if not key.startswith("kompose.")}
    selector = {"io.kompose.service": name}
    meta = {"annotations": annotations, "labels": selector, "name": name}
    objects: dict[str, dict] = {}
    service_ports = ports(service)
    kind = SERVICE_TYPES.get(labels.get("kompose.service.type", "").lower())
    if "kompose.service.type" in labels and kind is None:
        raise Unmodelled(f"{name}: kompose.service.type {labels['kompose.service.type']!r}")
    if service_ports:  # without ports kompose writes no Service (kubernetes.go:1523)
        spec = {
            "ports": [
                {"name": str(published), "port": published, "targetPort": target} for published, target in service_ports
            ],
            "selector": selector,
            "type": kind,
        }
        # A LoadBalancer is named, and labelled, <name>-tcp; only its selector keeps the service's
        # name (CreateLBService and initSvcObject, k8sutils.go:428-458; fixture external-traffic-policy).
        service_name = f"{name}-tcp" if kind == "LoadBalancer" else name
        objects[f"{service_name}-service.yaml"] = {
            "apiVersion": "v1",
            "kind": "Service",
            "spec": spec,
            "metadata": {**meta, "labels": {"io.kompose.service": service_name}, "name": service_name},
        }
    container: dict[str, Any] = {
        "name": name.replace("_", "-"),
        "image": service["image"],
        # An empty value is no "value" key: kompose marshals to JSON first (marshalWithIndent,
        # k8sutils.go:384) and k8s.io/api core/v1 EnvVar's Value is `json:"value,omitempty"`.
        "env": [
            {"name": key, **({"value": value} if value else {})}
            for key, value in sorted(key_values(service.get("environment")).items())
        ],
        "livenessProbe": liveness(service.get("healthcheck"), labels),
        "readinessProbe": readiness(labels),
        "ports": [
            {"containerPort": target, "protocol": "TCP"} for target in dict.fromkeys(t for _, t in service_ports)
        ],
        "volumeMounts": [
            {"mountPath": path.split(":")[0], "name": f"{name}-tmpfs{i}"}
            for i, path in enumerate(service.get("tmpfs", []))
        ],
    }
    policy = labels.get("kompose.image-pull-policy")
    if policy is not None and policy not in PULL_POLICIES:
        raise Unmodelled(f"{name}: kompose.image-pull-policy {policy!r}")
    container["imagePullPolicy"] = policy
    deploy = service.get("deploy") or {}
    resources = deploy.get("resources", {})
    limits, reservations = resources.get("limits", {}), resources.get("reservations", {})
    # deploy.replicas/mode/labels/placement/update_config all change kompose's output (compose.go:508-536).
    if (
        set(deploy) - {"resources"}
        or set(resources) - {"limits", "reservations"}
        or set(limits) - {"cpus", "memory"}
        or set(reservations) - {"cpus", "memory", "devices"}
    ):
        raise Unmodelled(f"{name}: deploy keys other than resources limits/reservations (cpus, memory, devices)")
    container["resources"] = {
        # compose's GPU reservation (devices) has no kompose equivalent: it is dropped.
        "limits": {
            "cpu": millicores(limits["cpus"]) if "cpus" in limits else None,
            "memory": decimal_exponent(memory_bytes(limits["memory"])) if "memory" in limits else None,
        },
        "requests": {
            "cpu": millicores(reservations["cpus"]) if "cpus" in reservations else None,
            "memory": decimal_exponent(memory_bytes(reservations["memory"])) if "memory" in reservations else None,
        },
    }
    container["securityContext"] = {
        "capabilities": {"add": service.get("cap_add", []), "drop": service.get("cap_drop", [])},
        "readOnlyRootFilesystem": True if service.get("read_only") else None,
    }
    pod = {
        "containers": [container],
        "restartPolicy": "Always",
        "volumes": [
            {"emptyDir": {"medium": "Memory"}, "name": f"{name}-tmpfs{i}"} for i in range(len(service.get("tmpfs", [])))
        ],
    }
    if "stop_grace_period" in service:
        pod["terminationGracePeriodSeconds"] = seconds(service["stop_grace_period"])
    # Pod labels: io.kompose.network/* only with --generate-network-policies (k8sutils.go:691-697);
    # strategy: Recreate only for services with volumes, and a tmpfs is not one (k8sutils.go:737-745).
    objects[f"{name}-deployment.yaml"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "strategy": {},
            "template": {"metadata": {"annotations": annotations, "labels": selector}, "spec": pod},
        },
        "status": {},
    }
    return objects


def prune(value: Any) -> Any:
    """removeEmptyInterfaces (k8sutils.go:322-357): nulls, empty maps and empty lists disappear."""
    if isinstance(value, dict):
        pruned = {key: prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [prune(item) for item in value if item not in (None, {})]
    return value


def convert(compose_file: Path) -> dict[str, str]:
    """File name -> text, as kompose writes them into --out (transformer/utils.go:282-311)."""
    document = interpolate(yaml.safe_load(compose_file.read_text()))
    services = {name.lower(): service for name, service in document["services"].items() if not service.get("profiles")}
    written: dict[str, str] = {}
    for name in sorted(services):
        for file, obj in convert_service(name, services[name]).items():
            written[file] = dump(prune(obj))
    return written


PLAIN_UNSAFE = re.compile(r"^(?:[?:,\[\]{}#&*!|>'\"%@`]|- |-$)|: | #|:$|^\s|\s$|^$|\n")
NOT_A_STRING = re.compile(
    r"""^(?:[-+]?(?:\d[\d_]*|0x[0-9a-fA-F]+|0o?[0-7]+)|[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~
    |y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$""",
    re.VERBOSE,
)


def scalar(value: Any) -> str:
    """gopkg.in/yaml.v3: a string that would read back as another type is double-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if NOT_A_STRING.match(text):
        return f'"{text}"'
    if PLAIN_UNSAFE.search(text):
        raise Unmodelled(f"string {text!r} would not be written plain; the model does not know yaml.v3's choice")
    return text


def dump(value: Any, indent: int = 0) -> str:
    """yaml.v3's encoder with SetIndent(2) (k8sutils.go:359-380): keys sorted, sequences indented."""
    pad = " " * indent
    lines: list[str] = []
    for key in sorted(value):
        item = value[key]
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:\n{dump(item, indent + 2)}")
        elif isinstance(item, list):
            lines.append(f"{pad}{key}:\n{dump_list(item, indent + 2)}")
        else:
            lines.append(f"{pad}{key}: {scalar(item)}\n")
    return "".join(lines)


def dump_list(items: list, indent: int) -> str:
    pad = " " * indent
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(pad + "- " + dump(item, indent + 2)[indent + 2 :])
        else:
            out.append(f"{pad}- {scalar(item)}\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.k8s.kompose_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for name, text in convert(args.file).items():
        (args.out / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
