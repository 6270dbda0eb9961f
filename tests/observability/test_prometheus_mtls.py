"""compose.mtls.yaml with --profile observability: Prometheus scrapes the model servers over mutual
TLS with a client certificate of its own (observability/prometheus/prometheus.mtls.yml, generated)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from local_mode.processes import ModelServer, wait_until
from models.server.settings import DEFAULT_PROMETHEUS_PATH
from observability import generate
from observability.local_stack import MONITORING_CONFIG, Prometheus
from observability.prometheus_api import PrometheusApi
from tests.compose.test_compose_stack import config
from tests.conftest import REPO
from tests.promtool import prometheus_path, promtool_path

FALLBACK = "mobilenet_v3_large"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """What compose.mtls.yaml's certs service writes into /certs (its command, minus the gateway)."""
    out = tmp_path_factory.mktemp("certs")
    command = ["--out", str(out), "--server", "primary", "--server", "fallback", "--client", "prometheus"]
    subprocess.run([sys.executable, "-m", "tools.certificates", *command], cwd=REPO, check=True, capture_output=True)
    return out


def mtls_config(certs: Path) -> dict:
    return yaml.safe_load(generate.prometheus_mtls().replace(f"{generate.CERTS}/", f"{certs}/"))


def test_the_mtls_profile_hands_prometheus_its_certificate_and_configuration():
    services = config("--profile", "mtls", "--profile", "observability", files=("compose.yaml", "compose.mtls.yaml"))[
        "services"
    ]
    command = services["certs"]["command"]
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--client"] == ["gateway", "prometheus"]
    prometheus = services["prometheus"]
    assert {(v["source"], v["target"], v.get("read_only")) for v in prometheus["volumes"]} == {
        ("mtls-certs", generate.CERTS, True)
    }
    assert prometheus["user"] == "10001:10001"  # the certs service's user: the keys are 0600
    assert prometheus["depends_on"]["certs"]["condition"] == "service_completed_successfully"
    configs = {c["target"]: c["source"] for c in prometheus["configs"]}
    assert configs["/etc/prometheus/prometheus.yml"] == "prometheus-mtls-config"
    rendered = config("--profile", "mtls", "--profile", "observability", files=("compose.yaml", "compose.mtls.yaml"))
    assert Path(rendered["configs"]["prometheus-mtls-config"]["file"]) == generate.PROMETHEUS_MTLS


def test_the_mtls_configuration_passes_promtool_with_the_certificates_in_place(certs, tmp_path):
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(mtls_config(certs)))
    (tmp_path / "rules").symlink_to(REPO / "observability" / "prometheus" / "rules")
    result = subprocess.run(
        [promtool_path(), "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job for job in mtls_config(certs)["scrape_configs"]}
    assert {name for name, job in jobs.items() if job.get("scheme") == "https"} == {"primary", "fallback"}


def _on(job: dict, target: str) -> dict:
    """``job`` with its compose DNS discovery replaced by this machine's address."""
    local = {key: value for key, value in job.items() if key != "dns_sd_configs"}
    return {**local, "static_configs": [{"targets": [target]}]}


def test_prometheus_scrapes_a_model_server_that_requires_client_certificates(exported_models, certs, tmp_path):
    prometheus_path()
    server = ModelServer(
        exported_models,
        FALLBACK,
        tmp_path / "server.log",
        client_tls=(certs / "ca.crt", certs / "prometheus.crt", certs / "prometheus.key"),
        SSL_CONFIG_FILE=str(certs / "primary.ssl_config"),  # the server certificate names "primary"
        MONITORING_CONFIG_FILE=str(MONITORING_CONFIG),
    )
    with server:
        server.start()
        target = f"127.0.0.1:{server.rest_port}"
        over_tls = next(job for job in mtls_config(certs)["scrape_configs"] if job["job_name"] == "primary")
        plain = yaml.safe_load(generate.PROMETHEUS_CONFIG.read_text())["scrape_configs"]
        before = next(job for job in plain if job["job_name"] == "primary")
        assert over_tls["metrics_path"] == before["metrics_path"] == DEFAULT_PROMETHEUS_PATH
        prometheus = Prometheus(tmp_path, [_on(over_tls, target), {**_on(before, target), "job_name": "plain"}])
        api = PrometheusApi(prometheus.url)
        try:

            def scraped() -> dict[str, tuple[str, str]]:
                return {job: (health, error) for job, health, error in api.targets()}

            wait_until(lambda: {h for h, _ in scraped().values()} == {"up", "down"}, 20, "both scraped once")
            health = scraped()
            assert health["primary"] == ("up", ""), health
            assert health["plain"][0] == "down", health  # the scrape of prometheus.yml, refused under mTLS
            series = api.query(':tensorflow:serving:request_count{job="primary"}')
            assert series, "the model server's TF-Serving metrics arrived over TLS"
        finally:
            prometheus.stop()
