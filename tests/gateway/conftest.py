from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gateway import create_app
from gateway.service import Service
from gateway.settings import Settings
from tests.gateway.fakes import FakeClient

ENV = {"PRIMARY_URL": "grpc://127.0.0.1:1", "PRIMARY_MODEL": "wide_resnet50_2", "PRIMARY_RESIZE_SHORTER": "232",
       "FALLBACK_URL": "grpc://127.0.0.1:2", "FALLBACK_MODEL": "mobilenet_v3_large", "HEDGE": "false"}


@pytest.fixture
def make_app():
    services = []

    def build(primary: dict | None = None, fallback: dict | None = None, **env: str):
        specs = {"primary": primary if primary is not None else {}, "fallback": fallback if fallback is not None else {}}
        clients = {}

        def factory(settings):
            clients[settings.role] = FakeClient(settings, top=1 if settings.role == "primary" else 2,
                                                **specs[settings.role])
            return clients[settings.role]

        service = Service.build(Settings.from_env({**ENV, **env}), client_factory=factory)
        services.append(service)
        app = create_app(service=service)
        app.config["TESTING"] = True
        app.clients = clients
        return app

    yield build
    for service in services:
        service.close()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def canary_models(tmp_path_factory):
    """LiteRT models that make bad canaries (tests/gateway/canary_models.py)."""
    from tests.gateway.canary_models import write_canary_models

    return write_canary_models(tmp_path_factory.mktemp("canary-models"))
