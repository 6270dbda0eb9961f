"""Fuzzing fixtures: the gateway app around stand-in models, and the size of a run.

FUZZ_EXAMPLES sets how many cases each property runs: a few hundred by default (CI), 10,000 for
the nightly-size run in the README."""

from __future__ import annotations

import os

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from gateway import create_app
from gateway.service import Service
from gateway.settings import Settings
from tests.gateway.fakes import GATEWAY_ENV, FakeClient

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="FUZZ_SEED" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
DEADLINE_MS = 2000
ENV = {**GATEWAY_ENV, "REQUEST_DEADLINE_MS": str(DEADLINE_MS)}


def fuzz_app() -> Flask:
    """The gateway app with stand-in models that always answer."""
    service = Service.build(
        Settings.from_env(ENV),
        client_factory=lambda backend: FakeClient(backend, top=1 if backend.role == "primary" else 2),
    )
    return create_app(service=service)


@pytest.fixture(scope="module")
def gateway_app():
    app = fuzz_app()
    yield app
    app.extensions["classifier"].close()
