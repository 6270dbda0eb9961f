"""The gateway's waitress: limits from the settings, waitress's own errors in the gateway's JSON shape."""

from __future__ import annotations

from flask import Flask

from common import http_server
from gateway.errors import error_body
from gateway.settings import Settings


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
