"""waitress, answering the errors it raises itself (body over the limit, malformed HTTP) as JSON,
and closing connections that send a request too slowly.

waitress checks Content-Length (and counts chunked bodies) against ``max_request_body_size`` while
reading, so an oversized body is refused with 413 before it is buffered. That refusal is waitress's,
not the app's, so each service passes the JSON shape of its errors here.

waitress's own ``channel_timeout`` only closes connections that stay silent: one that trickles a
byte every few seconds stays open for ever and holds one of ``connection_limit`` slots, and
enough of them stop the server accepting at all (health probes included). So the time to read a
request is bounded too: its headers within ``header_timeout_s`` of its first byte, the whole
request within ``read_timeout_s``. Requests are read by waitress's main thread and handed to a
worker thread only once complete, so slow clients never hold a thread, only a connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import waitress
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

# (status code, message) -> the JSON body the service answers errors with
ErrorBody = Callable[[int, str], dict[str, Any]]
MAINTENANCE_INTERVAL_S = 1  # how often waitress looks for connections to close (its default: 30 s)


def create_server(
    app: Callable, error_body: ErrorBody, header_timeout_s: float, read_timeout_s: float, **options: Any
):  # -> waitress's server (no public type)
    """``waitress.create_server(app, **options)`` whose own error answers are ``error_body(...)`` and
    which closes a connection whose request is read for longer than the timeouts."""

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

    class BoundedReadChannel(HTTPChannel):
        error_task_class = JsonErrorTask
        reading_since: float | None = None  # when the first byte of the request being read arrived

        def received(self, data: bytes) -> bool:
            if data and self.request is None and self.reading_since is None:
                self.reading_since = time.monotonic()
            result = super().received(data)
            if self.request is None:  # everything received so far forms complete requests
                self.reading_since = None
            return result

        def too_slow(self, now: float) -> bool:
            if self.reading_since is None or self.request is None:
                return False
            limit = read_timeout_s if self.request.headers_finished else header_timeout_s
            return now - self.reading_since > limit

    server = waitress.create_server(app, cleanup_interval=MAINTENANCE_INTERVAL_S, **options)
    server.channel_class = BoundedReadChannel
    idle_maintenance = server.maintenance

    def maintenance(now: float) -> None:  # waitress calls it from its loop every cleanup_interval
        idle_maintenance(now)
        for channel in list(server.active_channels.values()):
            if isinstance(channel, BoundedReadChannel) and channel.too_slow(time.monotonic()):
                channel.will_close = True  # waitress closes it from its loop (HTTPChannel.handle_write)

    server.maintenance = maintenance
    return server
