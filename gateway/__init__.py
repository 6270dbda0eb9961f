"""The classification gateway: a Flask app factory, in the Flask tutorial's style."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping

from flask import Flask, Response, g, request

from gateway.errors import register_error_handlers
from gateway.service import Service
from gateway.settings import Settings

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CLASSIFY_PATHS = ("/", "/classify")


def _classifying() -> bool:
    """A classify request, or a wrong method on its paths; not the web page at GET /."""
    return request.path in _CLASSIFY_PATHS and request.endpoint != "web.index"


def create_app(env: Mapping[str, str] | None = None, service: Service | None = None) -> Flask:
    """Build the app from the environment (or ``env``), or around an existing ``service`` (tests)."""
    if service is None:
        service = Service.build(Settings.from_env(env))
    app = Flask(__name__)
    app.url_map.merge_slashes = (
        False  # werkzeug would answer "//x" with an HTML 308 redirect that skips the JSON handlers
    )
    app.config["MAX_CONTENT_LENGTH"] = service.settings.max_body_bytes
    app.extensions["classifier"] = service

    from gateway import web
    from gateway.api import bp

    app.register_blueprint(bp)
    web.register(app)
    register_error_handlers(app, service.settings.max_body_bytes)

    @app.before_request
    def assign_request_id() -> None:
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        g.started = time.monotonic()

    @app.after_request
    def count_and_log(response: Response) -> Response:
        """Every answer, success or error, passes here once: the one place requests are counted and logged."""
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if _classifying():
            model = response.headers.get("X-Model")
            service.metrics.requests.labels(str(response.status_code), model or "none").inc()
            log.info(
                "classify",
                extra={
                    "request_id": g.get("request_id"),
                    "status": response.status_code,
                    "model": model,
                    "fallback": response.headers.get("X-Fallback"),
                    "fallback_reason": response.headers.get("X-Fallback-Reason"),
                    "ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
                },
            )
        return response

    return app
