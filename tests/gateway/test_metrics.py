from __future__ import annotations

import subprocess

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import URL_FETCH_OUTCOMES
from tests.gateway.test_api import upload
from tests.gateway.test_inputs import post_parts
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
            assert name.endswith(("_seconds", "_images")), name
    assert families["gateway_request_deadline_seconds"].samples[0].value == 2.0
    assert families["gateway_requests_in_flight_limit"].samples[0].value == 32


def test_fallback_reasons_start_at_zero(client):
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    reasons = {
        s.labels["reason"]: s.value for s in families["gateway_fallback_answers"].samples if s.name.endswith("_total")
    }
    assert reasons == {"timeout": 0, "unavailable": 0, "error": 0, "circuit_open": 0}


def samples(client) -> dict[tuple[str, frozenset], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_url_fetches_are_timed_by_outcome(make_app, image_origin):
    origin = image_origin(max_bytes=1 << 20)
    app = make_app(URL_FETCH="public", URL_FETCH_ALLOW_NETWORKS="127.0.0.1/32", URL_FETCH_TIMEOUT_MS="300")
    client = app.test_client()
    before = samples(client)
    assert {
        before[("gateway_url_fetch_duration_seconds_count", frozenset({("outcome", o)}))] for o in URL_FETCH_OUTCOMES
    } == {0}
    base = f"http://127.0.0.1:{origin.port}"
    urls = [
        f"{base}/cat.jpg",
        f"{base}/cat.jpg",
        "http://10.0.0.1/a.png",
        f"{base}/missing",
        f"{base}/slow",
        "ftp://x/a",
    ]
    assert client.post("/classify", json={"urls": urls}).status_code == 200
    after = samples(client)
    counts = {
        o: after[("gateway_url_fetch_duration_seconds_count", frozenset({("outcome", o)}))] for o in URL_FETCH_OUTCOMES
    }
    assert counts == {
        "ok": 2,
        "invalid_url": 1,
        "url_not_allowed": 1,
        "url_too_large": 0,
        "url_fetch_failed": 1,
        "url_fetch_timeout": 1,
    }
    timeout = after[("gateway_url_fetch_duration_seconds_sum", frozenset({("outcome", "url_fetch_timeout")}))]
    assert 0.3 <= timeout < 1.0  # the fetch was timed to its URL_FETCH_TIMEOUT_MS, not the request's end


def test_images_per_request(client, jpeg):
    upload(client, jpeg)
    response = post_parts(client, [jpeg] * 3)
    assert response.status_code == 200, response.get_json()
    after = samples(client)
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in after.items()
        if name == "gateway_classify_request_images_bucket"
    }
    assert (buckets["1.0"], buckets["2.0"], buckets["4.0"], buckets["+Inf"]) == (1, 1, 2, 2)
    assert after[("gateway_classify_request_images_sum", frozenset())] == 4
