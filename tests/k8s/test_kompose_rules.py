"""k8s/base is what kompose v1.37.0 writes for compose.yaml, by the rules of its source.

tests/k8s/kompose_model.py states those rules; the fixtures pin it to kompose's output shapes, and
the base is compared with it file for file and byte for byte, so a compose.yaml change that would
change kompose's output fails here, before the public workflow's regenerate-and-diff job.
"""

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.k8s.kompose_model import Unmodelled, convert

FIXTURES = REPO / "tests" / "k8s" / "kompose_fixtures"
BASE = REPO / "k8s" / "base"
COMPOSE = REPO / "compose.yaml"
LIVENESS_HTTP = "kompose.service.healthcheck.liveness.http_get_path"


@pytest.mark.parametrize("case", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_model_writes_kompose_output_shapes(case):
    expected = {p.name: p.read_text() for p in (FIXTURES / case / "output").iterdir()}
    assert convert(FIXTURES / case / "compose.yaml") == expected


def test_base_is_kompose_output_for_compose_yaml_file_for_file():
    committed = {p.name: p.read_text() for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"}
    generated = convert(COMPOSE)
    assert sorted(committed) == sorted(generated), "kompose would write other files"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} differs from kompose's output: run python -m tools.kompose_export"


def _services() -> dict[str, dict]:
    document = yaml.safe_load(COMPOSE.read_text())
    return {name: service for name, service in document["services"].items() if not service.get("profiles")}


def test_every_service_kompose_sees_is_cluster_internal():
    for name, service in _services().items():
        kind = service.get("labels", {}).get("kompose.service.type", "clusterip")
        assert kind == "clusterip", f"{name}: the Ingress is the only entry (a {kind} Service bypasses its failover)"


def test_no_label_that_kompose_would_ignore():
    for name, service in _services().items():
        if service.get("healthcheck", {}).get("test"):
            assert LIVENESS_HTTP not in service.get("labels", {}), (
                f"{name}: the healthcheck's test becomes the liveness probe; the liveness http_get label is ignored"
            )


def test_base_has_no_annotation_network_label_or_recreate():
    for path in BASE.glob("*-deployment.yaml"):
        deployment = yaml.safe_load(path.read_text())
        assert "annotations" not in deployment["metadata"], path.name
        assert set(deployment["spec"]["template"]["metadata"]["labels"]) == {"io.kompose.service"}, path.name
        assert "strategy" not in deployment["spec"], path.name


@pytest.mark.parametrize(
    "snippet, reason",
    [
        ("    volumes: [data:/data]\n", "volumes"),
        ("    labels: {kompose.volume.size: 1Gi}\n", "kompose.volume.size"),
        ('    restart: "no"\n', "Pod"),
        ("    healthcheck: {test: curl -f http://x/}\n", "CMD list form"),
        ("    deploy: {replicas: 3}\n", "deploy keys"),
    ],
)
def test_model_refuses_what_it_does_not_know(tmp_path: Path, snippet, reason):
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"services:\n  app:\n    image: example/app:1\n{snippet}")
    with pytest.raises(Unmodelled, match=reason):
        convert(compose)


def test_a_variable_without_default_is_refused(tmp_path: Path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  app:\n    image: example/app:${TAG}\n")
    with pytest.raises(Unmodelled, match="no default"):
        convert(compose)


def test_an_interpolated_value_stays_a_string_and_an_empty_one_has_no_value(tmp_path: Path):
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n  app:\n    image: example/app:1\n    environment:\n"
        "      MODE: ${MODE:-off}\n      HOSTS: ${HOSTS:-}\n      COUNT: ${COUNT:-3}\n"
    )
    text = convert(compose)["app-deployment.yaml"]
    env = yaml.safe_load(text)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "COUNT", "value": "3"}, {"name": "HOSTS"}, {"name": "MODE", "value": "off"}]
    assert 'value: "off"' in text, "yaml.v3 quotes a string YAML 1.1 would read as a boolean"
