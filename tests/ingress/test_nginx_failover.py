"""The Ingress failover, proven with real nginx: which codes fail over, that the fallback gets the
same POST and body at "/", that client errors pass through, that limits hold and nothing loops."""

import hashlib
import os
import time

import pytest
import requests
from urllib3 import encode_multipart_formdata

from ingress.render_nginx import EDGE_CONF, load, render
from local_mode.processes import free_port

PHOTO = os.urandom(300_000)


def post(nginx, path="/classify?top_k=3", body=None, headers=None, timeout=15):
    data, content_type = encode_multipart_formdata({"file": ("cat.jpg", PHOTO if body is None else body, "image/jpeg")})
    return (
        requests.post(
            f"{nginx.url}{path}",
            data=data,
            timeout=timeout,
            headers={"Content-Type": content_type, "X-Request-ID": "trace-1", **(headers or {})},
        ),
        data,
        content_type,
    )


def test_healthy_primary_answers(backends, start_nginx):
    primary, fallback = backends
    nginx = start_nginx(primary.address, fallback.address)
    response, data, _ = post(nginx)
    assert response.status_code == 200 and response.json()["answered_by"] == "primary"
    assert primary.received[0]["path"] == "/classify?top_k=3" and not fallback.received
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_fail_over_with_the_same_request(backends, start_nginx, status):
    primary, fallback = backends
    primary.status = status
    nginx = start_nginx(primary.address, fallback.address)
    response, data, content_type = post(nginx)
    assert response.status_code == 200 and response.json()["answered_by"] == "fallback"
    replay = fallback.received[0]
    assert replay["method"] == "POST" and replay["path"] == "/?top_k=3"
    assert replay["sha256"] == hashlib.sha256(data).hexdigest() and replay["length"] == len(data)
    assert replay["headers"]["Content-Type"] == content_type, "multipart boundary kept"
    assert replay["headers"]["X-Code"] == str(status)
    assert replay["headers"]["X-Original-URI"] == "/classify?top_k=3"
    assert replay["headers"]["X-Request-ID"] == "trace-1"


def test_refused_primary_fails_over_as_502(backends, start_nginx):
    _, fallback = backends
    nginx = start_nginx(f"127.0.0.1:{free_port()}", fallback.address)
    response, data, _ = post(nginx)
    assert response.status_code == 200 and response.json()["answered_by"] == "fallback"
    assert fallback.received[0]["headers"]["X-Code"] == "502"
    assert fallback.received[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_hanging_primary_times_out_and_fails_over_as_504(backends, start_nginx):
    primary, fallback = backends
    primary.delay_s = 5  # past proxy-read-timeout (3 s)
    nginx = start_nginx(primary.address, fallback.address)
    began = time.monotonic()
    response, _, _ = post(nginx)
    elapsed = time.monotonic() - began
    assert response.status_code == 200 and response.json()["answered_by"] == "fallback"
    assert fallback.received[0]["headers"]["X-Code"] == "504"
    assert 2.9 < elapsed < 4.5
    assert len(primary.received) == 1, "a POST that reached a gateway is not retried on another (not idempotent)"


@pytest.mark.parametrize("status", [400, 404, 413, 415, 422, 429])
def test_client_errors_pass_through_unchanged(backends, start_nginx, status):
    primary, fallback = backends
    primary.status = status
    nginx = start_nginx(primary.address, fallback.address)
    response, _, _ = post(nginx)
    assert response.status_code == status and response.json()["answered_by"] == "primary"
    assert not fallback.received


def test_body_over_the_limit_is_413_before_any_backend(backends, start_nginx):
    primary, fallback = backends
    nginx = start_nginx(primary.address, fallback.address)
    response, _, _ = post(nginx, body=b"x" * (12 << 20))
    assert response.status_code == 413
    assert not primary.received and not fallback.received


def test_body_at_the_gateway_limit_still_fails_over_whole(backends, start_nginx):
    primary, fallback = backends
    primary.status = 503
    nginx = start_nginx(primary.address, fallback.address)
    response, data, _ = post(nginx, body=b"y" * (10 << 20))
    assert response.status_code == 200 and fallback.received[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_fallback_down_gives_an_error_without_looping(backends, start_nginx):
    primary, _ = backends
    primary.status = 500
    nginx = start_nginx(primary.address, f"127.0.0.1:{free_port()}")
    began = time.monotonic()
    response, _, _ = post(nginx)
    assert response.status_code == 502
    assert time.monotonic() - began < 2
    assert len(primary.received) == 1


def test_failing_fallback_error_is_returned_as_is(backends, start_nginx):
    primary, fallback = backends
    primary.status, fallback.status = 500, 503
    nginx = start_nginx(primary.address, fallback.address)
    response, _, _ = post(nginx)
    assert response.status_code == 503 and response.json()["answered_by"] == "fallback"
    assert len(fallback.received) == 1 and len(primary.received) == 1


def test_committed_edge_config_is_current():
    assert EDGE_CONF.read_text() == render(load(), ["gateway:8080"], ["gateway-fallback:8080"], "8000"), (
        "run `python -m ingress.render_nginx`"
    )


def test_a_slow_fallback_still_answers(backends, start_nginx):
    """The failover location does not inherit the Ingress's 3 s timeouts (nginx.tmpl:838-866): it runs
    on nginx's 60 s default, so a fallback that takes 6 s answers 200 instead of 504."""
    primary, fallback = backends
    primary.status, fallback.delay_s = 503, 6
    nginx = start_nginx(primary.address, fallback.address)
    began = time.monotonic()
    response, _, _ = post(nginx, timeout=20)
    elapsed = time.monotonic() - began
    assert response.status_code == 200 and response.json()["answered_by"] == "fallback"
    assert 5.9 < elapsed < 9


def test_the_fallback_gets_the_headers_ingress_nginx_sets(backends, start_nginx):
    primary, fallback = backends
    primary.status = 500
    nginx = start_nginx(primary.address, fallback.address)
    post(nginx)
    replay = fallback.received[0]
    headers = replay["headers"]
    assert headers["X-Service-Name"] == "gateway" and headers["X-Service-Port"] == "8080", "the Ingress's service"
    assert headers["X-Namespace"] == "classifier" and headers["X-Ingress-Name"] == "classifier"
    assert headers["X-Forwarded-For"] == "127.0.0.1" and "X-Real-IP" not in headers
    assert replay["version"] == "HTTP/1.0" and headers["Connection"] == "close", (
        "nginx's default, not the Ingress's 1.1"
    )
    assert primary.received[0]["version"] == "HTTP/1.1" and primary.received[0]["headers"]["X-Real-IP"] == "127.0.0.1"


def test_a_post_goes_to_another_gateway_when_the_first_cannot_be_reached(backends, start_ingress_nginx):
    """proxy-next-upstream "error timeout": nothing was sent to the refused endpoint, so nginx may
    retry the POST on the next one (non_idempotent only matters once a request was sent)."""
    primary, fallback = backends
    nginx = start_ingress_nginx([f"127.0.0.1:{free_port()}", primary.address], fallback.address)
    for _ in range(4):
        response, _, _ = post(nginx)
        assert response.status_code == 200 and response.json()["answered_by"] == "primary"
    assert not fallback.received


def test_no_ready_gateway_endpoint_goes_straight_to_the_fallback(backends, start_ingress_nginx):
    """The controller points the location at the default backend itself (controller.go:959-973):
    original path, X-Code 503, and the gateway is never tried."""
    primary, fallback = backends
    nginx = start_ingress_nginx([], fallback.address)
    response, data, _ = post(nginx)
    assert response.status_code == 200 and response.json()["answered_by"] == "fallback"
    replay = fallback.received[0]
    assert replay["path"] == "/classify?top_k=3" and replay["headers"]["X-Code"] == "503"
    assert replay["headers"]["X-Service-Name"] == "gateway" and replay["version"] == "HTTP/1.1"
    assert replay["sha256"] == hashlib.sha256(data).hexdigest() and not primary.received
