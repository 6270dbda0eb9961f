from __future__ import annotations

import subprocess

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.test_api import upload
from tests.promtool import promtool_path


def test_content_type_names_the_text_format_once(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type == CONTENT_TYPE_LATEST and content_type.count("charset") == 1


def test_promtool_finds_nothing_to_lint(make_app, jpeg):
    app = make_app(primary={"error": "error"})
    client = app.test_client()
    upload(client, jpeg)
    client.post("/classify", json={})
    result = subprocess.run(
        [promtool_path(), "check", "metrics"], input=client.get("/metrics").data, capture_output=True, timeout=30
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, b"")


def test_names_carry_the_namespace_and_base_units(client):
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    for name, family in families.items():
        assert name.startswith("gateway_"), name
        if family.type == "histogram":
            assert name.endswith("_seconds"), name
    assert families["gateway_request_deadline_seconds"].samples[0].value == 2.0
    assert families["gateway_requests_in_flight_limit"].samples[0].value == 32


def test_fallback_reasons_start_at_zero(client):
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    reasons = {
        s.labels["reason"]: s.value for s in families["gateway_fallback_answers"].samples if s.name.endswith("_total")
    }
    assert reasons == {"timeout": 0, "unavailable": 0, "error": 0, "circuit_open": 0}
