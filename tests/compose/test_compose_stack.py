"""`docker compose` on a real engine: configuration of every variant, and failover of the running stack."""

import io
import json
import os
import re
import subprocess

import numpy as np
import pytest
import requests
import yaml
from PIL import Image

from tests.compose.conftest import BUILD, compose, compose_cli_or_skip, wait_for
from tests.conftest import REPO, SHARED, tracked_files


def photos() -> dict[str, bytes]:
    if (SHARED / "images").is_dir():
        return {p.stem: p.read_bytes() for p in sorted((SHARED / "images").glob("*.jpg"))}
    pixels = np.random.default_rng(0).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return {"synthetic": buffer.getvalue()}


def classify(url: str, data: bytes, path: str = "/classify") -> requests.Response:
    return requests.post(f"{url}{path}", files={"file": ("photo.jpg", data, "image/jpeg")}, timeout=10)


def config(*extra: str, files=("compose.yaml",)) -> dict:
    compose_cli_or_skip()
    args = [
        "docker",
        "compose",
        *[a for f in files for a in ("-f", str(REPO / f))],
        *extra,
        "config",
        "--format",
        "json",
    ]
    result = subprocess.run(
        args,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": "/usr/bin:" + os.environ.get("PATH", "")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("files", [("compose.yaml",), ("compose.yaml", "compose.gpu.yaml")], ids=["cpu", "gpu"])
@pytest.mark.parametrize("profile", [[], ["--profile", "edge"]], ids=["default", "edge"])
def test_every_variant_is_valid(files, profile):
    rendered = config(*profile, files=files)
    services = rendered["services"]
    assert {"gateway", "primary", "fallback"} <= set(services)
    assert ("edge" in services) == bool(profile) and ("gateway-fallback" in services) == bool(profile)
    gpu = services["primary"].get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
    primary = services["primary"]
    if files == ("compose.yaml",):
        assert not gpu, "the default must start on a host without a GPU"
        assert primary["build"]["target"] == "primary-litert" and primary["image"].startswith(
            "classifier/primary-litert:"
        )
    else:
        assert gpu == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        assert primary["build"]["target"] == "primary-tfserving" and primary["image"].startswith(
            "classifier/primary-tfserving:"
        )
        assert not primary.get("environment"), "the LiteRT server's settings mean nothing to TF-Serving"
        assert primary["healthcheck"]["test"][:2] == ["CMD", "bash"], "TF-Serving's image has no python"
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert not [v for v in service.get("volumes", []) if v.get("type") == "bind"], f"{name}: bind mount"
        assert not service.get("image", "").endswith(":latest"), name
    for name, service in services.items():
        assert service["init"] is True and service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"] and not service.get("cap_add"), name
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert any(key.startswith("kompose.") for key in service["labels"]), name
        assert service["deploy"]["resources"]["limits"], name


def test_compose_file_uses_the_specification_format():
    document = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert "version" not in document
    for dockerfile in tracked_files("*Dockerfile"):
        text = (REPO / dockerfile).read_text()
        assert ":latest" not in text, dockerfile
        assert "USER 10001" in text, f"{dockerfile} must run as a fixed non-root UID"
        assert (REPO / f"{dockerfile}.dockerignore").exists(), dockerfile


# Every URL_FETCH* variable the gateway reads (gateway/url_fetch.py names each one in quotes once).
URL_FETCH_SETTINGS = sorted(set(re.findall(r'"(URL_FETCH\w*)"', (REPO / "gateway" / "url_fetch.py").read_text())))
GATEWAYS = ("gateway", "gateway-fallback")


def test_both_gateways_get_the_url_fetch_settings_with_the_gateways_defaults(monkeypatch):
    from gateway.settings import Settings

    assert "URL_FETCH" in URL_FETCH_SETTINGS and "URL_FETCH_MAX_REDIRECTS" in URL_FETCH_SETTINGS
    for name in URL_FETCH_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    services = config("--profile", "edge")["services"]
    for name in GATEWAYS:
        env = services[name]["environment"]
        assert set(URL_FETCH_SETTINGS) <= set(env), name
        unset = {key: value for key, value in env.items() if key not in URL_FETCH_SETTINGS}
        assert Settings.from_env(env).url_fetch == Settings.from_env(unset).url_fetch, name


def test_both_gateways_take_the_url_fetch_settings_from_the_users_environment(monkeypatch):
    chosen = {
        "URL_FETCH": "allowlist",
        "URL_FETCH_ALLOWLIST": "images.example.com,.cdn.example.com",
        "URL_FETCH_ALLOW_NETWORKS": "10.20.0.0/16",
        "URL_FETCH_MAX_BYTES": "2048",
        "URL_FETCH_CONNECT_TIMEOUT_MS": "300",
        "URL_FETCH_TIMEOUT_MS": "900",
        "URL_FETCH_MAX_REDIRECTS": "1",
    }
    assert sorted(chosen) == URL_FETCH_SETTINGS
    for name, value in chosen.items():
        monkeypatch.setenv(name, value)
    services = config("--profile", "edge")["services"]
    for name in GATEWAYS:
        assert {key: services[name]["environment"].get(key) for key in chosen} == chosen, name


def test_photos_are_classified_by_the_primary(stack):
    for name, data in photos().items():
        response = classify(stack, data)
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert body["model"] == "wide_resnet50_2" and body["fallback"] is False, name
        assert len(body["predictions"]) == 5 and body["model_version"] == "1"


def _fallback_answers(url: str, data: bytes) -> dict | None:
    body = classify(url, data).json()
    return body if body.get("fallback") else None


def test_paused_primary_then_stopped_primary_then_back(stack):
    data = next(iter(photos().values()))
    compose("pause", "primary")
    try:
        body = wait_for(lambda: _fallback_answers(stack, data), 30, "fallback answers while paused")
        assert body["model"] == "mobilenet_v3_large" and body["fallback_reason"] in ("timeout", "circuit_open")
        for _ in range(5):
            response = classify(stack, data)
            assert response.status_code == 200 and response.json()["fallback"] is True
    finally:
        compose("unpause", "primary")
    wait_for(lambda: not classify(stack, data).json()["fallback"], 60, "primary serves after unpause")

    compose("stop", "primary")
    try:
        body = wait_for(lambda: _fallback_answers(stack, data), 30, "fallback answers while stopped")
        assert body["fallback_reason"] in ("unavailable", "circuit_open", "timeout")
        ready = requests.get(f"{stack}/readyz", timeout=5).json()
        assert ready["ready"] is True and ready["backends"]["primary"]["state"].startswith("UNAVAILABLE")
    finally:
        compose("start", "primary")
    compose("up", "--wait", "--wait-timeout", "180", "-d", "primary", timeout=240)
    body = wait_for(lambda: (b := classify(stack, data).json()) and not b["fallback"] and b, 60, "primary serves again")
    assert body["model"] == "wide_resnet50_2"


def test_edge_profile_fails_over_to_the_fallback_gateway(stack):
    compose(
        "--profile",
        "edge",
        "up",
        BUILD,
        "--wait",
        "--wait-timeout",
        "300",
        "-d",
        "edge",
        "gateway-fallback",
        timeout=600,
    )
    port = compose("--profile", "edge", "port", "edge", "8000").stdout.strip().rsplit(":", 1)[1]
    edge = f"http://127.0.0.1:{port}"
    assert compose("--profile", "edge", "exec", "-T", "edge", "id", "-u").stdout.strip() == "10001"
    data = next(iter(photos().values()))
    assert classify(edge, data).json()["fallback"] is False
    compose("stop", "gateway")
    try:
        response = wait_for(lambda: (r := classify(edge, data)).status_code == 200 and r, 30, "edge failover")
        body = response.json()
        assert body["fallback"] is True and body["model"] == "mobilenet_v3_large"
    finally:
        compose("start", "gateway")
        compose("up", "--wait", "--wait-timeout", "120", "-d", "gateway", timeout=200)


def test_model_server_images_serve_tfserving_metrics(stack):
    """The images carry monitoring.config, so Prometheus's compose job finds the TF-Serving path.
    (Requests are counted already: the healthchecks ask the REST status endpoint.)"""
    fetch = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:8501/monitoring/prometheus/metrics', timeout=5).read().decode())"
    )
    for service, model in (("primary", "wide_resnet50_2"), ("fallback", "mobilenet_v3_large")):
        text = compose("exec", "-T", service, "python", "-c", fetch).stdout
        assert f'litert_model_state{{model_name="{model}",state="AVAILABLE"}} 1.0' in text, service
        assert ":tensorflow:serving:request_count{" in text, service


def test_mtls_profile_configures_both_ends():
    """compose.mtls.yaml (profile mtls): certificates made first, servers requiring client
    certificates, the gateway presenting one, health checks over HTTPS with the server's own."""
    services = config("--profile", "mtls", files=("compose.yaml", "compose.mtls.yaml"))["services"]
    assert services["certs"]["build"]["target"] == "certs"
    for server, model in (("primary", "wide_resnet50_2"), ("fallback", "mobilenet_v3_large")):
        service = services[server]
        assert service["environment"]["SSL_CONFIG_FILE"] == f"/certs/{server}.ssl_config"
        assert service["depends_on"]["certs"]["condition"] == "service_completed_successfully"
        assert any(v["target"] == "/certs" and v["read_only"] for v in service["volumes"])
        health = service["healthcheck"]["test"][-1]
        assert f"https://127.0.0.1:8501/v1/models/{model}" in health and f"/certs/{server}.crt" in health
    gateway = services["gateway"]["environment"]
    for role in ("PRIMARY", "FALLBACK"):
        assert gateway[f"{role}_TLS_CA"] == "/certs/ca.crt" and gateway[f"{role}_TLS_CERT"] == "/certs/gateway.crt"


def test_mtls_stack_classifies_over_mutual_tls(engine):
    """The mtls profile on the running stack's images: the gateway answers through TLS on both
    backends, and a plaintext call to a model server is refused."""
    files = [a for f in ("compose.yaml", "compose.mtls.yaml") for a in ("-f", str(REPO / f))]
    project = ["docker", "compose", "-p", "classifier-mtls-test", *files, "--profile", "mtls"]
    env = {
        **os.environ,
        "WEIGHTS": "random",
        "GATEWAY_PUBLISH": "127.0.0.1:",
        "PATH": "/usr/bin:" + os.environ.get("PATH", ""),
    }

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        result = subprocess.run([*project, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    try:
        run("up", "--build", "--wait", "--wait-timeout", "600", "-d")
        port = run("port", "gateway", "8080").stdout.strip().rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        ready = wait_for(lambda: (r := requests.get(f"{url}/readyz", timeout=5)).ok and r.json(), 60, "gateway ready")
        assert {b["state"] for b in ready["backends"].values()} == {"AVAILABLE"}
        body = classify(url, next(iter(photos().values()))).json()
        assert body["model"] == "wide_resnet50_2" and body["fallback"] is False
        plain = run(
            "exec",
            "-T",
            "gateway",
            "python",
            "-c",
            "import urllib.request\ntry:\n urllib.request.urlopen('http://fallback:8501/v1/models/x', timeout=5)\n"
            "except Exception as e:\n print(type(e).__name__)",
        )
        assert plain.stdout.strip() in ("RemoteDisconnected", "ConnectionResetError", "BadStatusLine")
    finally:
        subprocess.run(
            [*project, "down", "-v", "--remove-orphans"], cwd=REPO, capture_output=True, timeout=300, env=env
        )
