"""The gateway's servers on 127.0.0.1: probes answered on PROBE_PORT while slow and saturating
clients hold every connection slot and worker thread of the main port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import requests

from gateway.wsgi_server import create_server, start_probe_server

HOGS = 12  # slow clients: more than the main port's connection slots
CLASSIFIERS = 3  # saturating clients: one per worker thread


@pytest.fixture
def servers(make_app):
    """The main server (8 connection slots, 3 threads, 2 requests in flight; backends that take 3 s)
    and the probe server, each on a free port."""
    app = make_app(
        primary={"delay_s": 3.0},
        fallback={"delay_s": 3.0},
        HOST="127.0.0.1",
        PORT="0",
        PROBE_PORT="0",
        CONNECTION_LIMIT="8",
        MAX_IN_FLIGHT="2",
        THREADS="3",
        HEADER_READ_TIMEOUT_S="30",
    )
    settings = app.extensions["classifier"].settings
    main = create_server(app, settings)
    threading.Thread(target=main.run, daemon=True).start()
    probes = start_probe_server(app, settings)
    yield int(main.effective_port), int(probes.effective_port)
    main.close()
    probes.close()


def get(port: int, path: str, timeout_s: float) -> tuple[int, bytes, float] | None:
    """(status, body, seconds) of one GET, or None when no answer came within ``timeout_s``."""
    started = time.monotonic()
    try:
        response = requests.get(f"http://127.0.0.1:{port}{path}", timeout=timeout_s)
    except requests.exceptions.RequestException:
        return None
    return response.status_code, response.content, time.monotonic() - started


def get_or_none(call):
    try:
        return call()
    except requests.exceptions.RequestException:
        return None


def test_probes_are_answered_on_the_probe_port_while_the_main_port_is_saturated(servers, jpeg):
    main_port, probe_port = servers
    hogs: list[socket.socket] = []
    classifiers = [
        threading.Thread(
            target=get_or_none,
            args=(lambda: requests.post(f"http://127.0.0.1:{main_port}/classify", data=jpeg, timeout=10),),
            daemon=True,
        )
        for _ in range(CLASSIFIERS)
    ]
    try:
        for thread in classifiers:
            thread.start()
        time.sleep(0.3)  # the classify requests hold the worker threads
        for _ in range(HOGS):
            hogs.append(hog := socket.socket())
            hog.setblocking(False)
            hog.connect_ex(("127.0.0.1", main_port))
        time.sleep(0.3)
        for hog in hogs:
            with contextlib.suppress(OSError):  # not connected yet: it waits in the listen backlog instead
                hog.send(b"GET /healthz HTTP/1.1\r\nX-Slow: ")  # headers that never end
        assert get(main_port, "/healthz", timeout_s=1.0) is None, "the main port must be saturated for this test"
        for path, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200)):
            answer = get(probe_port, path, timeout_s=2.0)
            assert answer is not None and answer[0] == status, (path, answer)
            assert answer[2] < 1.0, (
                f"{path} took {answer[2]:.2f} s on the probe port (a kubelet's default timeout: 1 s)"
            )
    finally:
        for hog in hogs:
            hog.close()
        for thread in classifiers:
            thread.join(timeout=10)


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
