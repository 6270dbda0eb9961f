"""k8s/components/monitoring: ServiceMonitors and PrometheusRule valid against the Prometheus Operator's
CRD schemas, pointing at real Services, ports and paths; the scraper admitted by a NetworkPolicy."""

import os
import subprocess

import pytest
import yaml

from models.server.settings import DEFAULT_PROMETHEUS_PATH
from tests.conftest import REPO
from tests.k8s.test_gateway_probes import gateways_in
from tests.k8s.test_manifests import KUBECTL, VALIDATE

COMPONENT = REPO / "k8s" / "components" / "monitoring"
CRD_OBJECTS = [COMPONENT / "service-monitors.yaml", COMPONENT / "prometheus-rule.yaml"]


@pytest.fixture(scope="module", params=["gpu", "minikube"])
def rendered(request, tmp_path_factory) -> list[dict]:
    """An overlay with the component added, as a user on a Prometheus Operator cluster would."""
    folder = tmp_path_factory.mktemp("monitoring")
    k8s = os.path.relpath(REPO / "k8s", folder)  # kustomize refuses absolute paths
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "classifier",
                "resources": [f"{k8s}/overlays/{request.param}"],
                "components": [f"{k8s}/components/monitoring"],
            }
        )
    )
    result = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_objects_validate_against_the_operators_crd_schemas(validator):
    result = validator(*CRD_OBJECTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "VALID monitoring.coreos.com/v1 ServiceMonitor/classifier-gateways",
        "VALID monitoring.coreos.com/v1 ServiceMonitor/classifier-model-servers",
        "VALID monitoring.coreos.com/v1 PrometheusRule/classifier",
    ]


def test_the_validator_rejects_a_wrong_rule(validator, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: bad}\nspec:\n"
        "  groups:\n    - name: g\n      rules:\n        - {alert: A, expr: up, for: 5 minutes}\n"
    )
    result = validator(bad)
    assert result.returncode == 1 and "for must match pattern" in result.stdout


def test_network_policy_validates():
    result = subprocess.run(
        [VALIDATE, "--strict", "--quiet", "-k", "1.33.0", str(COMPONENT / "network-policy.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _selected(selector: dict, labels: dict) -> bool:
    return all(labels.get(e["key"]) in e["values"] for e in selector["matchExpressions"])


def test_service_monitors_reach_every_service_on_its_metrics_port_and_path(rendered):
    services = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Service"}
    monitors = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "ServiceMonitor"}
    paths = {"classifier-gateways": "/metrics", "classifier-model-servers": DEFAULT_PROMETHEUS_PATH}
    scraped = set()
    for name, monitor in monitors.items():
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == paths[name]
        for service in services.values():
            if _selected(monitor["spec"]["selector"], service["metadata"]["labels"]):
                assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]], service["metadata"]["name"]
                scraped.add(service["metadata"]["name"])
    assert scraped == {"gateway", "gateway-fallback", "primary", "fallback"}


def test_scraper_is_admitted_to_the_metrics_ports_of_every_pod(rendered):
    policy = next(d for d in rendered if d["metadata"]["name"] == "metrics-from-prometheus")
    assert policy["metadata"]["namespace"] == "classifier"
    deployments = [d for d in rendered if d["kind"] == "Deployment"]
    assert all(
        _selected(policy["spec"]["podSelector"], d["spec"]["template"]["metadata"]["labels"]) for d in deployments
    )
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    probe_ports = {settings.probe_port for _, settings in gateways_in(rendered).values()}
    assert {p["port"] for p in rule["ports"]} == probe_ports | {8501}, (
        "the gateways' PROBE_PORT, the model servers' REST"
    )


def test_prometheus_rule_carries_the_tested_rules(rendered):
    rule = next(d for d in rendered if d["kind"] == "PrometheusRule")
    rules_file = REPO / "observability" / "prometheus" / "rules" / "classifier.rules.yml"
    assert rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text())["groups"]
