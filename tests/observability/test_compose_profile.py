"""compose.yaml's `observability` profile: Prometheus and Grafana, pinned, provisioned, hardened like
every other service, published on 127.0.0.1 only. (Their images cannot be pulled here, so the
profile is checked as `docker compose config` renders it.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compose.test_compose_stack import config
from tests.conftest import REPO

PROFILE = ["--profile", "observability"]


@pytest.fixture(scope="module")
def rendered() -> dict:
    return config(*PROFILE)


def test_profile_adds_prometheus_and_grafana_only_when_asked():
    assert not {"prometheus", "grafana"} & set(config()["services"])


def test_images_are_pinned_and_services_hardened(rendered):
    for name in ("prometheus", "grafana"):
        service = rendered["services"][name]
        image = service["image"]
        assert image.split(":")[1][0].isdigit() or image.split(":")[1].startswith("v"), image
        assert service["init"] is True and service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["healthcheck"]["test"][0] == "CMD" and service["deploy"]["resources"]["limits"]
        assert [p["host_ip"] for p in service["ports"]] == ["127.0.0.1"], name
        assert not [v for v in service.get("volumes", []) if v["type"] == "bind"], name
        assert all(v["type"] == "volume" for v in service.get("volumes", [])), name


def test_configuration_is_handed_in_from_observability(rendered):
    files = {name: Path(c["file"]) for name, c in rendered["configs"].items()}
    assert all(path.is_file() and path.is_relative_to(REPO / "observability") for path in files.values()), files
    targets = {c["source"]: c["target"] for s in ("prometheus", "grafana") for c in rendered["services"][s]["configs"]}
    assert targets == {
        "prometheus-config": "/etc/prometheus/prometheus.yml",
        "prometheus-rules": "/etc/prometheus/rules/classifier.rules.yml",  # prometheus.yml's rule_files glob
        "grafana-datasource": "/etc/grafana/provisioning/datasources/prometheus.yaml",
        "grafana-dashboard-provider": "/etc/grafana/provisioning/dashboards/classifier.yaml",
        "grafana-dashboard": "/var/lib/grafana/dashboards/classifier.json",  # the provider's options.path
    }
    provider = (REPO / "observability/grafana/provisioning/dashboards/classifier.yaml").read_text()
    assert "path: /var/lib/grafana/dashboards\n" in provider
    datasource = (REPO / "observability/grafana/provisioning/datasources/prometheus.yaml").read_text()
    assert "url: http://prometheus:9090\n" in datasource


def test_prometheus_scrapes_every_service_by_its_compose_name(rendered):
    import yaml

    scrape = yaml.safe_load((REPO / "observability/prometheus/prometheus.yml").read_text())["scrape_configs"]
    names = {name for job in scrape for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
    assert {"gateway", "primary", "fallback", "gateway-fallback"} == names
    assert names <= set(config("--profile", "edge")["services"])


@pytest.mark.parametrize("config_file", ["prometheus.yml", "prometheus.mtls.yml"])
def test_gateways_are_scraped_on_their_probe_port(config_file):
    """The port each gateway's compose environment gives PROBE_PORT, so scrapes never wait behind /classify."""
    import yaml

    from gateway.settings import Settings

    services = config("--profile", "edge")["services"]
    scrape = yaml.safe_load((REPO / "observability/prometheus" / config_file).read_text())["scrape_configs"]
    for name in ("gateway", "gateway-fallback"):
        settings = Settings.from_env({k: str(v) for k, v in services[name]["environment"].items()})
        assert settings.probe_port is not None, f"{name}: PROBE_PORT is not set"
        (job,) = [job for job in scrape if job["job_name"] == name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert {sd["port"] for sd in job["dns_sd_configs"]} == {settings.probe_port}, name
