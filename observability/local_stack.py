"""The service on 127.0.0.1 as child processes, with a real Prometheus (Debian's binary) scraping it
under the project's rules: what the live alert test and `python -m observability.screenshot --local`
run. Rules may be compressed in time (``time_scale``) so an alert's whole life fits in seconds.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import yaml

from local_mode.processes import REPO, Gateway, ModelServer, free_port, serve_tflite, wait_until
from models.server.settings import DEFAULT_PROMETHEUS_PATH  # what MONITORING_CONFIG asks for

RULES = REPO / "observability" / "prometheus" / "rules" / "classifier.rules.yml"
MONITORING_CONFIG = REPO / "models" / "primary" / "monitoring.config"
PRIMARY, FALLBACK = "wide_resnet50_2", "mobilenet_v3_large"
_DURATION = re.compile(r"^(\d+)([smh])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _scaled(duration: str, time_scale: int) -> str:
    match = _DURATION.match(duration)
    if not match:
        raise ValueError(f"unexpected duration {duration!r} in {RULES.name}")
    return f"{max(1, int(match[1]) * _SECONDS[match[2]] // time_scale)}s"


def scaled_rules(time_scale: int) -> dict:
    """The committed rules with every range and `for` divided by ``time_scale``; expressions otherwise unchanged."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\d+[smh])\]", lambda m: f"[{_scaled(m[1], time_scale)}]", rule["expr"])
            if "for" in rule:
                rule["for"] = _scaled(rule["for"], time_scale)
    return document


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        raise FileNotFoundError("prometheus is absent: apt-get install prometheus (bash .ci/run does)")
    return path


class Prometheus:
    """Debian's prometheus on 127.0.0.1, scraping ``scrape_configs`` every ``interval`` seconds."""

    def __init__(self, folder: Path, scrape_configs: list[dict], time_scale: int = 1, interval: float = 1.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "rules.yml").write_text(yaml.safe_dump(scaled_rules(time_scale)))
        every = f"{int(interval * 1000)}ms"
        (folder / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": every,
                        "evaluation_interval": every,
                        "scrape_timeout": f"{int(interval * 900)}ms",
                    },
                    "rule_files": ["rules.yml"],
                    "scrape_configs": scrape_configs,
                }
            )
        )
        self.log = (folder / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: requests.get(f"{self.url}/-/ready", timeout=1).ok, 30, "prometheus ready", self.process)
        except (TimeoutError, RuntimeError):
            self.stop()
            raise

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def static_job(job: str, target: str, path: str = "/metrics") -> dict:
    return {"job_name": job, "metrics_path": path, "static_configs": [{"targets": [target]}]}


class _Origin(BaseHTTPRequestHandler):
    """Serves one image at /photo.jpg: the gateway's URL fetches have somewhere to go."""

    photo = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        found = self.path == "/photo.jpg"
        body = self.photo if found else b"not here"
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def image_origin(photo: bytes) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``photo``; yields its URL."""
    handler = type("Origin", (_Origin,), {"photo": photo})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/photo.jpg"
    finally:
        server.shutdown()
        server.server_close()


class LocalStack:
    """Two model servers (metrics on), a gateway that may fetch from 127.0.0.1, and Prometheus.

    The primary's role is played by the MobileNet export under the primary's name: the alerts depend
    on routing, not on which network answers, and this keeps the stack quick on two cores."""

    def __init__(self, models: Path, folder: Path, time_scale: int = 1, interval: float = 1.0):
        self.models, self.folder, self.time_scale, self.interval = models, folder, time_scale, interval
        tflite = models / FALLBACK / "1" / "model.tflite"
        if not tflite.is_file():
            raise FileNotFoundError(f"{tflite} is absent: export with .venv/bin/python -m models.export --model all")
        monitoring = str(MONITORING_CONFIG)
        base = serve_tflite(folder / "primary-models", PRIMARY, tflite)
        self.primary = ModelServer(
            base, PRIMARY, folder / "primary.log", MONITORING_CONFIG_FILE=monitoring, INTERPRETERS="1"
        )
        self.fallback = ModelServer(
            models, FALLBACK, folder / "fallback.log", MONITORING_CONFIG_FILE=monitoring, INTERPRETERS="1"
        )
        self.probe_port = free_port()  # scraped there, as the deployments do (README "Probes under load")
        self.gateway = Gateway(
            folder / "gateway.log",
            PROBE_PORT=str(self.probe_port),
            PRIMARY_URL=f"grpc://{self.primary.grpc_target}",
            PRIMARY_MODEL=PRIMARY,
            FALLBACK_URL=f"grpc://{self.fallback.grpc_target}",
            FALLBACK_MODEL=FALLBACK,
            HEDGE="false",
            URL_FETCH="public",
            URL_FETCH_ALLOW_NETWORKS="127.0.0.1/32",
        )
        self.prometheus: Prometheus | None = None

    def __enter__(self) -> LocalStack:
        try:
            self.primary.start()
            self.fallback.start()
            self.gateway.start()
            self.prometheus = Prometheus(
                self.folder,
                [
                    static_job("gateway", f"127.0.0.1:{self.probe_port}"),
                    static_job("primary", self.primary.rest.removeprefix("http://"), DEFAULT_PROMETHEUS_PATH),
                    static_job("fallback", self.fallback.rest.removeprefix("http://"), DEFAULT_PROMETHEUS_PATH),
                ],
                self.time_scale,
                self.interval,
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def kill_primary(self) -> None:
        self.primary.stop(signal.SIGKILL)

    def __exit__(self, *exc: object) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        for service in (self.gateway, self.fallback, self.primary):
            if service.process is not None:
                service.stop()
