from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from local_mode.processes import Service, free_port, wait_until


@dataclass
class Recorder:
    """What the in-process server saw: each request's body, and the most requests in flight at once."""

    bodies: list[bytes] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


# Decides each answer from the request's number (0, 1, ...): (status, close the connection after it, seconds to wait).
Behaviour = Callable[[int], tuple[int, bool, float]]


@pytest.fixture
def http_server() -> Iterator[Callable[[Behaviour], tuple[int, Recorder]]]:
    """Start an HTTP/1.1 keep-alive server on 127.0.0.1 in this process; returns its port and recorder."""
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: Behaviour) -> tuple[int, Recorder]:
        recorder = Recorder()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with recorder.lock:
                    number = len(recorder.bodies)
                    recorder.bodies.append(body)
                    recorder.content_types.append(self.headers["Content-Type"])
                    recorder.in_flight += 1
                    recorder.most_in_flight = max(recorder.most_in_flight, recorder.in_flight)
                status, close, wait = behaviour(number)
                threading.Event().wait(wait)
                with recorder.lock:
                    recorder.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(b"{}")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1], recorder

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class TrivialServer:
    service: Service
    port: int


@pytest.fixture
def trivial_server(tmp_path) -> Iterator[Callable[..., TrivialServer]]:
    """Start tests/benchmarks/trivial_server.py as a real process: POST burns ``burn_ms`` of CPU;
    ``child_mb`` > 0 gives it a child holding that much memory and burning CPU."""
    started: list[Service] = []

    def start(burn_ms: float, child_mb: int = 0) -> TrivialServer:
        port = free_port()
        args = ["-m", "tests.benchmarks.trivial_server", str(port), str(burn_ms), str(child_mb)]
        service = Service(args, {}, tmp_path / f"trivial-{port}.log").start()
        started.append(service)
        wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1).ok, 30, "trivial server", service.process
        )
        return TrivialServer(service, port)

    yield start
    for service in started:
        service.stop()
