"""What a person opens in a browser: the page at ``GET /`` and the interactive API docs at ``GET /docs/``.

Everything is served by the gateway itself (no CDN, no build step): the page is three static files,
the docs are Swagger UI from the pinned ``flask-swagger-ui`` package, reading ``/openapi.json``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response
from flask_swagger_ui import get_swaggerui_blueprint

bp = Blueprint("web", __name__, static_folder="static", static_url_path="/assets")


@bp.get("/")
def index() -> Response:
    # Read and closed here: send_static_file's streamed file stays open when a WSGI caller (such as
    # schemathesis) does not close the response.
    with bp.open_resource("static/index.html") as page:
        return Response(page.read(), mimetype="text/html")


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(
        get_swaggerui_blueprint(
            "/docs",
            "/openapi.json",
            config={"app_name": "Image classifier API", "tryItOutEnabled": True},
            blueprint_name="docs",
        )
    )
