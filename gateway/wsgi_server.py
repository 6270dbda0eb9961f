"""The gateway's waitress: limits from the settings, waitress's own errors in the gateway's JSON shape."""

from __future__ import annotations

from flask import Flask

from common import http_server
from gateway.errors import error_body
from gateway.settings import Settings


def create_server(app: Flask, settings: Settings):  # -> waitress's server (no public type)
    return http_server.create_server(
        app, error_body, host=settings.host, port=settings.port, threads=settings.threads, ident="gateway",
        max_request_body_size=settings.max_body_bytes,
        connection_limit=settings.threads * 4,
        channel_timeout=max(30, int(settings.deadline_s) * 4),
    )
