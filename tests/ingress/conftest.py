"""Debian's nginx running the configuration ingress-nginx renders for our Ingress, with recording
HTTP servers as the gateway (primary) and the fallback-only gateway."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ingress.render_nginx import EDGE_CONF, load, render
from local_mode.processes import free_port, wait_until


class Recorder(http.server.ThreadingHTTPServer):
    """Answers as told (status, delay) and records what it received."""

    daemon_threads = True

    def __init__(self, name: str):
        self.name, self.status, self.delay_s = name, 200, 0.0
        self.received: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        server: Recorder = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server.received.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "version": self.request_version,
                "sha256": hashlib.sha256(body).hexdigest(),
                "length": len(body),
            }
        )
        time.sleep(server.delay_s)
        payload = json.dumps({"answered_by": server.name, "sha256": hashlib.sha256(body).hexdigest()}).encode()
        self.send_response(server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = _answer


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class Nginx:
    def __init__(self, config: str, workdir: Path):
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "site.conf").write_text(config.replace("listen 8000;", f"listen 127.0.0.1:{self.port};"))
        # Every temp path in the test's folder: nginx creates the compiled-in ones (/var/lib/nginx/...)
        # at start, which a non-root user (a CI runner's) may not.
        temp_paths = "".join(f"    {kind}_temp_path {workdir}/{kind};\n" for kind in TEMP_PATHS)
        (workdir / "nginx.conf").write_text(
            f"pid {workdir}/nginx.pid;\nerror_log {workdir}/error.log info;\nevents {{}}\nhttp {{\n"
            f"    access_log off;\n{temp_paths}    include {workdir}/site.conf;\n}}\n"
        )
        self._stderr = (workdir / "stderr.log").open("wb")
        self.process = subprocess.Popen(
            ["nginx", "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"], stderr=self._stderr
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._listening, 10, "nginx listening", self.process)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._stderr.close()


def _nginx_binary() -> None:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light); .ci/run installs it")


@pytest.fixture
def backends():
    primary, fallback = Recorder("primary"), Recorder("fallback")
    yield primary, fallback
    for server in (primary, fallback):
        server.shutdown()
        server.server_close()


def edge_config(gateway: list[str], fallback: str) -> str:
    """The committed compose edge file, pointed at the test's upstreams."""
    assert len(gateway) == 1, "the edge file has one gateway server"
    return (
        EDGE_CONF.read_text()
        .replace("server gateway:8080 ", f"server {gateway[0]} ")
        .replace("server gateway-fallback:8080 ", f"server {fallback} ")
    )


def _nginx_starter(kind: str, workdir: Path):
    started: list[Nginx] = []

    def start(primary: str | list[str], fallback: str) -> Nginx:
        gateway = [primary] if isinstance(primary, str) else primary
        config = render(load(), gateway, [fallback], "8000") if kind == "ingress" else edge_config(gateway, fallback)
        started.append(Nginx(config, workdir / f"nginx{len(started)}"))
        return started[-1]

    return start, started


@pytest.fixture(params=["ingress", "edge"])
def start_nginx(request, tmp_path):
    """Each test runs against the Ingress rendering and against the compose edge file."""
    _nginx_binary()
    start, started = _nginx_starter(request.param, tmp_path)
    yield start
    for nginx in started:
        nginx.stop()


@pytest.fixture
def start_ingress_nginx(tmp_path):
    """The Ingress rendering alone: several gateway endpoints, or none ready (an empty list)."""
    _nginx_binary()
    start, started = _nginx_starter("ingress", tmp_path)
    yield start
    for nginx in started:
        nginx.stop()
