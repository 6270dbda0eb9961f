"""The gateway's servers on 127.0.0.1: probes answered on PROBE_PORT while slow and saturating
clients hold every connection slot and worker thread of the main port."""

from __future__ import annotations

import socket
import time

import requests

from tests.gateway.conftest import get, saturated


def test_probes_are_answered_on_the_probe_port_while_the_main_port_is_saturated(servers, jpeg):
    main_port, probe_port = servers
    with saturated(main_port, jpeg):
        for path, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200)):
            answer = get(probe_port, path, timeout_s=2.0)
            assert answer is not None and answer[0] == status, (path, answer)
            assert answer[2] < 1.0, (
                f"{path} took {answer[2]:.2f} s on the probe port (a kubelet's default timeout: 1 s)"
            )


def test_the_probe_port_serves_nothing_else(servers):
    _, probe_port = servers
    response = requests.post(f"http://127.0.0.1:{probe_port}/classify", data=b"x", timeout=5)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert "/healthz" in response.json()["error"]["message"]
    response = requests.get(f"http://127.0.0.1:{probe_port}/", timeout=5)
    assert response.status_code == 404, "not even the web page"


def test_the_probe_port_cuts_slow_clients_quickly(servers):
    _, probe_port = servers
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", probe_port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        assert sock.recv(1024) == b"", "closed without an answer"
    assert time.monotonic() - started < 4.5, "PROBE_READ_TIMEOUT_S (2 s) plus the 1 s maintenance interval"
