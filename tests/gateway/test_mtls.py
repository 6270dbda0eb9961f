"""The gateway's clients over mutual TLS to real model servers that require client certificates."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from gateway.settings import Settings, SettingsError
from local_mode.processes import Gateway, ModelServer
from tests.conftest import REPO
from tests.gateway.fakes import GATEWAY_ENV
from tests.models.server.conftest import MOBILENET


@pytest.fixture(scope="module")
def mtls_server(exported_models, pki, tmp_path_factory):
    log = tmp_path_factory.mktemp("mtls") / "server.log"
    with ModelServer(
        exported_models, MOBILENET, log, client_tls=(pki.ca, *pki.client), SSL_CONFIG_FILE=str(pki.ssl_config)
    ) as server:
        yield server.start()


def _tls_env(role: str, ca, cert=None, key=None) -> dict[str, str]:
    env = {f"{role}_TLS_CA": str(ca)}
    if cert:
        env |= {f"{role}_TLS_CERT": str(cert), f"{role}_TLS_KEY": str(key)}
    return env


def _both_backends(server: ModelServer, ca, cert=None, key=None) -> dict[str, str]:
    """The primary over gRPC and the fallback over REST (https), both on ``server``, with these files."""
    return {
        "PRIMARY_URL": f"grpc://{server.grpc_target}",
        "PRIMARY_MODEL": MOBILENET,
        "FALLBACK_URL": f"https://127.0.0.1:{server.rest_port}",
        "FALLBACK_MODEL": MOBILENET,
        **_tls_env("PRIMARY", ca, cert, key),
        **_tls_env("FALLBACK", ca, cert, key),
    }


def _classify(gateway: Gateway, jpeg: bytes) -> requests.Response:
    return requests.post(f"{gateway.url}/classify", files={"file": ("p.jpg", jpeg)}, timeout=10)


def test_gateway_classifies_through_mutual_tls_on_grpc_and_rest(mtls_server, pki, tmp_path, jpeg):
    """Primary over gRPC, fallback over REST (https), both presenting the client certificate."""
    env = _both_backends(mtls_server, pki.ca, *pki.client)
    with Gateway(tmp_path / "log", **env) as gateway:
        gateway.start()
        ready = requests.get(f"{gateway.url}/readyz", timeout=5).json()
        assert {role: b["state"] for role, b in ready["backends"].items()} == {
            "primary": "AVAILABLE",
            "fallback": "AVAILABLE",
        }
        answer = _classify(gateway, jpeg)
        assert answer.status_code == 200 and answer.json()["fallback"] is False, answer.text
    with Gateway(tmp_path / "log", **{**env, "PRIMARY_URL": "grpc://127.0.0.1:1"}) as gateway:
        gateway.start()
        answer = _classify(gateway, jpeg)  # the REST fallback over TLS answers
        assert answer.status_code == 200 and answer.json()["fallback"] is True, answer.text


@pytest.mark.parametrize("client", [None, "untrusted", "expired"])
def test_gateway_without_a_valid_client_certificate_is_refused(mtls_server, pki, tmp_path, jpeg, client):
    files = getattr(pki, client) if client else (None, None)
    env = _both_backends(mtls_server, pki.ca, *files)
    with Gateway(tmp_path / "log", **env) as gateway:
        gateway.start()
        ready = requests.get(f"{gateway.url}/readyz", timeout=5)
        assert ready.status_code == 503
        assert all(b["state"].startswith("UNAVAILABLE") for b in ready.json()["backends"].values()), ready.text
        answer = _classify(gateway, jpeg)
        assert answer.status_code == 503 and "models_unavailable" in answer.text, answer.text


def test_wrong_ca_fails_the_gateway_start_with_one_line(pki, tmp_path):
    """A client certificate given as the CA: the gateway refuses to start, naming the variable."""
    env = {"PATH": "/usr/bin:/bin", **GATEWAY_ENV, **_tls_env("PRIMARY", pki.client[0], *pki.client)}
    result = subprocess.run(
        [sys.executable, "-m", "gateway"], cwd=REPO, capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"gateway: PRIMARY_TLS_CA={pki.client[0]}: holds no CA certificate")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"PRIMARY_TLS_CA": "/nonexistent/ca.crt"}, "PRIMARY_TLS_CA=/nonexistent/ca.crt: cannot read it"),
        ({"PRIMARY_TLS_CA": "KEY"}, "holds no PEM certificate"),
        ({"PRIMARY_TLS_CERT": "CERT"}, "PRIMARY_TLS_CERT and PRIMARY_TLS_KEY go together"),
        ({"PRIMARY_TLS_CERT": "CERT", "PRIMARY_TLS_KEY": "KEY"}, "PRIMARY_TLS_CERT needs PRIMARY_TLS_CA"),
        ({"PRIMARY_TLS_CA": "CA", "PRIMARY_TLS_CERT": "CERT", "PRIMARY_TLS_KEY": "OTHER_KEY"}, "not a matching PEM"),
        ({"FALLBACK_URL": "http://127.0.0.1:2", "FALLBACK_TLS_CA": "CA"}, "FALLBACK_URL is http://; use https://"),
    ],
)
def test_tls_settings_are_validated(pki, extra, message):
    files = {"CA": str(pki.ca), "CERT": str(pki.client[0]), "KEY": str(pki.client[1]), "OTHER_KEY": str(pki.expired[1])}
    env = {**GATEWAY_ENV, **{name: files.get(value, value) for name, value in extra.items()}}
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env(env)


def test_tls_settings_are_held_per_backend(pki):
    settings = Settings.from_env({**GATEWAY_ENV, **_tls_env("PRIMARY", pki.ca, *pki.client)})
    assert settings.primary.tls.ca == pki.ca and settings.primary.tls.cert == pki.client[0]
    assert settings.fallback.tls is None


def test_a_server_certificate_from_another_ca_is_named_in_readyz(mtls_server, pki, tmp_path):
    """The gateway verifies the server too: trusting another CA, /readyz says why each backend is down."""
    with Gateway(tmp_path / "log", **_both_backends(mtls_server, pki.stranger_ca, *pki.client)) as gateway:
        gateway.start()
        ready = requests.get(f"{gateway.url}/readyz", timeout=5)
    assert ready.status_code == 503
    for role, backend in ready.json()["backends"].items():
        assert "CERTIFICATE_VERIFY_FAILED" in backend["state"], (role, backend["state"])
