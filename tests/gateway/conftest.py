from __future__ import annotations

import io
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from gateway import create_app
from gateway.service import Service
from gateway.settings import BackendSettings, Settings
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
