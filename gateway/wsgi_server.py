"""waitress, with its own error answers (body over the limit, malformed HTTP) in our JSON shape.

waitress checks Content-Length (and counts chunked bodies) against ``max_request_body_size`` while
reading, so an oversized upload is refused with 413 without being buffered; that refusal is
waitress's, not Flask's, hence this hook.
"""

from __future__ import annotations

import json

import waitress
from flask import Flask
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from gateway.settings import Settings

_CODES = {400: "bad_request", 413: "payload_too_large", 431: "request_header_fields_too_large",
          500: "internal_error"}


class JsonErrorTask(ErrorTask):
    def execute(self) -> None:
        error = self.request.error
        message = str(error.body).strip() or error.reason
        if error.code == 413:
            message = f"request body is over the limit of {self.channel.adj.max_request_body_size} bytes"
        body = json.dumps({"error": {"code": _CODES.get(error.code, "error"), "message": message}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def create_server(app: Flask, settings: Settings):  # -> waitress's server (no public type)
    server = waitress.create_server(
        app, host=settings.host, port=settings.port, threads=settings.threads, ident="gateway",
        max_request_body_size=settings.max_body_bytes,
        connection_limit=settings.threads * 4,
        channel_timeout=max(30, settings.deadline_ms // 1000 * 4),
    )
    server.channel_class = JsonErrorChannel
    return server
