from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import numpy as np
import pytest
import requests
from PIL import Image

from gateway import create_app
from gateway.service import Service
from gateway.settings import BackendSettings, Settings
from gateway.wsgi_server import create_server, start_probe_server
from tests.gateway.fakes import GATEWAY_ENV, FakeClient, SlowModel


@pytest.fixture
def make_app():
    services = []

    def build(primary: dict | None = None, fallback: dict | None = None, **env: str):
        specs = {
            "primary": primary if primary is not None else {},
            "fallback": fallback if fallback is not None else {},
        }
        clients = {}

        def factory(settings):
            clients[settings.role] = FakeClient(
                settings, **{"top": 1 if settings.role == "primary" else 2, **specs[settings.role]}
            )
            return clients[settings.role]

        service = Service.build(Settings.from_env({**GATEWAY_ENV, **env}), client_factory=factory)
        services.append(service)
        app = create_app(service=service)
        app.config["TESTING"] = True
        app.clients = clients
        return app

    yield build
    for service in services:
        service.close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


class _ImageHandler(BaseHTTPRequestHandler):
    """Routes of the image origin the URL fetcher is tested against (see ``image_origin``)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        origin = self.server.origin
        origin.requests.append((self.path, self.headers.get("Host")))
        path, _, query = self.path.partition("?")
        if path == "/redirect":
            self._send(302, b"", {"Location": unquote(query)})
        elif path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif path == "/big":
            self._send(200, b"", {"Content-Length": str(origin.max_bytes + 1)}, body_follows=False)
        elif path == "/truncated":
            self.close_connection = True
            self._send(200, b"\xff\xd8\xff" * 10, {"Content-Length": "1000"})
        elif path == "/chunked":
            self._chunked([b"\xff" * 4096] * (origin.max_bytes // 4096 + 2))
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass  # the fetcher hung up at its time limit
        elif path in origin.files:
            self._send(200, origin.files[path], {"Content-Type": "text/plain"})  # the fetcher must sniff
        else:
            self._send(404, b"not here", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str], body_follows: bool = True) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_follows:
            self.wfile.write(body)

    def _chunked(self, chunks: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the fetcher hung up at its size limit


@dataclass
class ImageOrigin:
    """An HTTP server on 127.0.0.1 (optionally TLS) serving ``files`` and the fetcher's hard cases."""

    port: int
    files: dict[str, bytes]
    max_bytes: int
    requests: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def image_origin(jpeg):
    def start(tls: ssl.SSLContext | None = None, max_bytes: int = 64 << 10) -> ImageOrigin:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
        server.daemon_threads = True
        server.handle_error = lambda *_: None  # refused TLS handshakes and hang-ups are the point
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        server.origin = ImageOrigin(
            server.server_address[1], {"/cat.jpg": jpeg, "/notes.txt": b"just text\n"}, max_bytes
        )
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server.origin

    servers: list[ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def canary_models(tmp_path_factory):
    """LiteRT models that make bad canaries (tests/gateway/canary_models.py)."""
    from tests.gateway.canary_models import write_canary_models

    return write_canary_models(tmp_path_factory.mktemp("canary-models"))


HOGS = 12  # slow clients: more than the `servers` main port's connection slots
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


@contextlib.contextmanager
def saturated(main_port: int, jpeg: bytes) -> Iterator[None]:
    """Every worker thread of the `servers` main port held by /classify and every connection slot
    by a client whose headers never end, as slow and saturating clients would."""
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
        yield
    finally:
        for hog in hogs:
            hog.close()
        for thread in classifiers:
            thread.join(timeout=10)


@pytest.fixture
def slow_model():
    """A model answering TF-Serving's Predict over gRPC and REST after ``delay_s`` (settable), on 127.0.0.1."""
    model = SlowModel()
    yield model
    model.stop()


@pytest.fixture
def backend_settings():
    """Settings of a backend at ``url`` (grpc:// or http://)."""

    def build(url: str) -> BackendSettings:
        return Settings.from_env({"FALLBACK_URL": url, "FALLBACK_MODEL": "m"}).backends[0]

    return build
