"""Slow clients against common.http_server: a request read too slowly is cut, probes keep answering."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from common import http_server


def hello(_environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"ok": true}']


@pytest.fixture
def serve():
    servers = []

    def start(**options):
        server = http_server.create_server(
            hello, lambda code, message: {"error": message}, host="127.0.0.1", port=0, threads=2, **options
        )
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        return server.effective_port

    yield start
    for server in servers:
        server.close()


def trickle(port: int, head: bytes, every_s: float, seconds: float) -> float | None:
    """Send ``head`` then one byte every ``every_s``; return when the server closed the connection
    (seconds after connecting), or None when it was still open after ``seconds``."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(head)
        while time.monotonic() - started < seconds:
            try:
                sock.sendall(b"x")
                sock.settimeout(every_s)
                if sock.recv(1024) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
    return None


def get(port: int, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_trickled_headers_are_cut_after_the_header_timeout(serve):
    """waitress's channel_timeout counts silence only: a byte every 0.2 s kept the old server's
    connection open for ever."""
    port = serve(header_timeout_s=1.0, read_timeout_s=30.0, channel_timeout=30)
    closed_after = trickle(port, b"GET /healthz HTTP/1.1\r\nX-Slow: ", every_s=0.2, seconds=6)
    assert closed_after is not None and 1.0 <= closed_after < 3.5, closed_after


def test_trickled_body_is_cut_after_the_read_timeout(serve):
    port = serve(header_timeout_s=1.0, read_timeout_s=2.0, channel_timeout=30)
    head = b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
    closed_after = trickle(port, head, every_s=0.2, seconds=8)
    assert closed_after is not None and 2.0 <= closed_after < 4.5, closed_after


def test_slow_clients_cannot_shut_out_probes_for_long(serve):
    """With every connection slot held by a trickling client, the old server stopped accepting;
    with read bounds the slots come back within the header timeout and a probe is answered."""
    port = serve(header_timeout_s=1.0, read_timeout_s=30.0, channel_timeout=30, connection_limit=8)
    hogs = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    try:
        for hog in hogs:
            hog.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        started = time.monotonic()
        assert get(port, timeout=5).startswith(b"HTTP/1.1 200"), "probe answered once the slow ones are cut"
        assert time.monotonic() - started < 4
    finally:
        for hog in hogs:
            hog.close()


def test_complete_requests_on_a_kept_alive_connection_are_not_cut(serve):
    port = serve(header_timeout_s=0.5, read_timeout_s=0.5, channel_timeout=30)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"ok": true}'):  # headers and body may come in two segments
                chunk = sock.recv(4096)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer
            time.sleep(1.5)  # idle between requests: only channel_timeout applies
