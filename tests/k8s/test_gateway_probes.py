"""Every deployed gateway is probed and scraped on its PROBE_PORT, read from its own environment by the
gateway's settings, so kubelet probes and Prometheus never wait behind /classify; the Ingress keeps
sending /classify to the main port."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from gateway.settings import Settings
from gateway.wsgi_server import PROBE_PATHS
from tests.k8s.test_canary_components import build
from tests.k8s.test_manifests import OVERLAYS

COMPONENTS = ["gateway-canary", "monitoring"]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory) -> list[dict]:
    """Each overlay with the canary gateway and the monitoring component added."""
    folder = tmp_path_factory.mktemp(f"probes-{request.param}")
    return build(folder, *COMPONENTS, overlay_name=request.param)


def gateways_in(documents: list[dict]) -> dict[str, tuple[dict, Settings]]:
    """Deployment name -> (its gateway container, that container's settings as the gateway reads them)."""
    found = {}
    for document in documents:
        if document["kind"] != "Deployment":
            continue
        (container, *_) = document["spec"]["template"]["spec"]["containers"]
        if "/gateway" not in container["image"] and "/classifier-gateway" not in container["image"]:
            continue
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        found[document["metadata"]["name"]] = (container, Settings.from_env(env))
    return found


def _probe_port(probe: dict) -> int:
    if "httpGet" in probe:
        assert probe["httpGet"]["path"] in PROBE_PATHS
        return int(probe["httpGet"]["port"])
    (url,) = re.findall(r"https?://[^'\"\s]+", " ".join(probe["exec"]["command"]))
    assert urlsplit(url).path in PROBE_PATHS
    return int(urlsplit(url).port or 80)


def test_every_gateway_is_probed_on_its_probe_port(rendered):
    gateways = gateways_in(rendered)
    assert set(gateways) == {"gateway", "gateway-fallback", "gateway-canary"}
    for name, (container, settings) in gateways.items():
        assert settings.probe_port is not None, f"{name}: PROBE_PORT is not set"
        ports = {p["containerPort"] for p in container["ports"]}
        assert {settings.port, settings.probe_port} <= ports, name
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            if kind in container:
                assert _probe_port(container[kind]) == settings.probe_port, f"{name} {kind}"
        assert "readinessProbe" in container and "livenessProbe" in container, name


def test_gateways_are_scraped_on_their_probe_port(rendered):
    gateways = gateways_in(rendered)
    services = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Service"}
    (monitor,) = [
        d for d in rendered if d["kind"] == "ServiceMonitor" and d["metadata"]["name"] == "classifier-gateways"
    ]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] in PROBE_PATHS
    scraped = monitor["spec"]["selector"]["matchExpressions"][0]["values"]
    assert set(scraped) == set(gateways), "every gateway, the canary too, is scraped"
    for name in scraped:
        _, settings = gateways[name]
        (port,) = [p for p in services[name]["spec"]["ports"] if p["name"] == endpoint["port"]]
        assert port["targetPort"] == settings.probe_port, name


def test_the_scraper_is_admitted_to_the_probe_port_and_the_ingress_only_to_the_main_port(rendered):
    gateways = gateways_in(rendered)
    policies = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "NetworkPolicy"}
    (scrape,) = policies["metrics-from-prometheus"]["spec"]["ingress"]
    (ingress,) = policies["gateways-from-ingress"]["spec"]["ingress"]
    admitted = policies["metrics-from-prometheus"]["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert set(gateways) <= set(admitted)
    for name in gateways:
        _, settings = gateways[name]
        assert settings.probe_port in {p["port"] for p in scrape["ports"]}, name
        assert {p["port"] for p in ingress["ports"]} == {settings.port}, name


def test_the_ingress_routes_to_the_main_port(rendered):
    gateways = gateways_in(rendered)
    services = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Service"}
    backends = [
        path["backend"]["service"]
        for document in rendered
        if document["kind"] == "Ingress"
        for rule in document["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends
    for backend in backends:
        _, settings = gateways[backend["name"]]
        (port,) = [
            p
            for p in services[backend["name"]]["spec"]["ports"]
            if p["port"] == backend["port"].get("number") or p["name"] == backend["port"].get("name")
        ]
        assert port["targetPort"] == settings.port, backend
