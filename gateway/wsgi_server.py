"""The gateway's waitress: limits from the settings, waitress's own errors in the gateway's JSON shape;
and, on ``PROBE_PORT``, a second small server for probes and scrapes that /classify traffic cannot reach.

On the main port, slow or numerous clients can hold every connection slot (``CONNECTION_LIMIT``) for
up to the read timeouts and keep the one loop thread that reads requests busy, so a probe waits behind
them and a kubelet restarts a healthy gateway. The probe port has its own listening socket, connection
slots, loop thread and worker threads, and answers only /healthz, /readyz and /metrics.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable

from flask import Flask

from common import http_server
from gateway.errors import error_body
from gateway.settings import Settings

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Probers and scrapers are few (kubelet, Prometheus) and send whole requests at once.
PROBE_THREADS = 4  # liveness, readiness (up to STATUS_TIMEOUT_MS on a frozen backend), a scrape, a spare
PROBE_CONNECTION_LIMIT = 64
PROBE_READ_TIMEOUT_S = 2.0


def create_server(app: Flask, settings: Settings):  # -> waitress's server (no public type)
    return http_server.create_server(
        app,
        error_body,
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        ident="gateway",
        max_request_body_size=settings.max_body_bytes,
        header_timeout_s=settings.header_read_timeout_s,
        read_timeout_s=settings.request_read_timeout_s,
        # Slow clients hold connections, not threads; poll() because select() stops at 1024 descriptors.
        connection_limit=settings.connection_limit,
        asyncore_use_poll=True,
        channel_timeout=max(30, int(settings.deadline_s) * 4),  # an idle keep-alive connection
    )


def probes_only(app: Callable) -> Callable:
    """``app`` for PROBE_PATHS; a JSON 404 for any other path."""
    body = json.dumps(error_body(404, f"this port serves only {', '.join(sorted(PROBE_PATHS))}")).encode()

    def serve(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in PROBE_PATHS:
            return app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return serve


def start_probe_server(app: Flask, settings: Settings):  # -> waitress's server, or None without PROBE_PORT
    """Serve PROBE_PATHS on PROBE_PORT from a thread of its own; ``close()`` the result to stop it."""
    if settings.probe_port is None:
        return None
    server = http_server.create_server(
        probes_only(app),
        error_body,
        host=settings.host,
        port=settings.probe_port,
        threads=PROBE_THREADS,
        ident="gateway",
        max_request_body_size=1024,
        header_timeout_s=PROBE_READ_TIMEOUT_S,
        read_timeout_s=PROBE_READ_TIMEOUT_S,
        connection_limit=PROBE_CONNECTION_LIMIT,
        channel_timeout=30,
    )
    threading.Thread(target=server.run, name="probe-server", daemon=True).start()
    return server
