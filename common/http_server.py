"""waitress, answering the errors it raises itself (body over the limit, malformed HTTP) as JSON.

waitress checks Content-Length (and counts chunked bodies) against ``max_request_body_size`` while
reading, so an oversized body is refused with 413 before it is buffered. That refusal is waitress's,
not the app's, so each service passes the JSON shape of its errors here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import waitress
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

# (status code, message) -> the JSON body the service answers errors with
ErrorBody = Callable[[int, str], dict[str, Any]]


def create_server(app: Callable, error_body: ErrorBody, **options: Any):  # -> waitress's server (no public type)
    """``waitress.create_server(app, **options)`` whose own error answers are ``error_body(...)``."""

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            message = str(error.body).strip() or error.reason
            if error.code == 413:
                message = f"request body is over the limit of {self.channel.adj.max_request_body_size} bytes"
            body = json.dumps(error_body(error.code, message)).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    server = waitress.create_server(app, **options)
    server.channel_class = JsonErrorChannel
    return server
