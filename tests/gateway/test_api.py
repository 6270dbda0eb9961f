"""The HTTP contract: accepted inputs, the answer's shape, and a JSON error for every bad input."""

import io
import threading
import time

import pytest
from urllib3 import encode_multipart_formdata

from gateway import imaging
from tests import hostile_images


def upload(client, data, field="file", path="/classify", **kwargs):
    return client.post(
        path, data={field: (io.BytesIO(data), "photo.jpg")}, content_type="multipart/form-data", **kwargs
    )


@pytest.mark.parametrize("path", ["/classify", "/"])
@pytest.mark.parametrize("field", ["file", "image"])
def test_multipart_upload(client, jpeg, path, field):
    response = upload(client, jpeg, field=field, path=path)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == "wide_resnet50_2" and body["model_version"] == "1"
    assert body["fallback"] is False and body["fallback_reason"] is None and body["hedged"] is False
    assert len(body["predictions"]) == 5
    first = body["predictions"][0]
    assert first == {"label": "goldfish", "index": 1, "score": 0.5}
    scores = [p["score"] for p in body["predictions"]]
    assert scores == sorted(scores, reverse=True)
    assert set(body["timings_ms"]) == {"decode", "preprocess", "infer", "total"}
    assert response.headers["X-Model"] == "wide_resnet50_2" and response.headers["X-Fallback"] == "false"
    assert response.headers["X-Request-ID"] == body["request_id"] and len(body["request_id"]) == 32


@pytest.mark.parametrize("media", ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"])
def test_raw_body_with_an_image_content_type(client, jpeg, media):
    # The Content-Type only selects raw-body mode; the bytes are sniffed, so a mislabelled JPEG works.
    response = client.post("/classify", data=jpeg, content_type=media)
    assert response.status_code == 200


def test_top_k_and_request_id(client, jpeg):
    response = upload(client, jpeg, path="/classify?top_k=10", headers={"X-Request-ID": "abc-123"})
    body = response.get_json()
    assert len(body["predictions"]) == 10 and body["request_id"] == "abc-123"
    assert response.headers["X-Request-ID"] == "abc-123"
    unsafe = upload(client, jpeg, headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert unsafe.get_json()["request_id"] != "<script>alert(1)</script>"


def test_fallback_answer_is_labelled(make_app, jpeg):
    client = make_app(primary={"error": "unavailable"}).test_client()
    response = upload(client, jpeg)
    body = response.get_json()
    assert body["fallback"] is True and body["fallback_reason"] == "unavailable"
    assert body["model"] == "mobilenet_v3_large" and body["predictions"][0]["index"] == 2
    assert response.headers["X-Fallback"] == "true" and response.headers["X-Fallback-Reason"] == "unavailable"


def test_both_down_is_503_with_both_reasons(make_app, jpeg):
    client = make_app(primary={"error": "unavailable"}, fallback={"error": "error"}).test_client()
    response = upload(client, jpeg)
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "models_unavailable"
    assert "primary: unavailable" in error["message"] and "fallback: error" in error["message"]
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": {"other": (io.BytesIO(b"x"), "x.jpg")}, "content_type": "multipart/form-data"}, 400, "missing_file"),
        (
            dict(
                zip(
                    ("data", "content_type"),
                    encode_multipart_formdata({"file": ("x.jpg", b"", "image/jpeg")}),
                    strict=True,
                )
            ),
            400,
            "empty_file",
        ),
        ({"data": b"--x\r\ngarbage", "content_type": "multipart/form-data; boundary=x"}, 400, "missing_file"),
        ({"data": b"abc", "content_type": "multipart/form-data"}, 400, "bad_multipart"),
        (
            {"data": b"--" + b"b" * 300 + b"\r\n", "content_type": "multipart/form-data; boundary=" + "b" * 300},
            400,
            "bad_multipart",
        ),
        ({"data": b"", "content_type": "image/jpeg"}, 400, "empty_file"),
        ({}, 400, "missing_file"),
        ({"json": {"image": "base64..."}}, 400, "invalid_json"),
        ({"data": b"{not json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"json": {"url": "https://example.com/cat.jpg"}}, 403, "url_fetch_disabled"),
        ({"data": b"cat", "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": b"\xff\xd8\xff", "content_type": "application/octet-stream"}, 415, "unsupported_media_type"),
        (
            {"data": {"file": (io.BytesIO(b"just some text\n"), "cat.jpg")}, "content_type": "multipart/form-data"},
            415,
            "unsupported_media_type",
        ),
    ],
)
def test_bad_input_gets_a_json_error(client, kwargs, status, code):
    response = client.post("/classify", **kwargs)
    assert response.status_code == status, response.data
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]


def test_truncated_jpeg_is_422(client, jpeg):
    response = upload(client, jpeg[: len(jpeg) // 3])
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "corrupt_image"


@pytest.mark.parametrize("top_k", ["0", "11", "five", "-1", "", "²", "①", "٣", "9" * 4301, " 5"])
def test_invalid_top_k(client, jpeg, top_k):
    response = upload(client, jpeg, path=f"/classify?top_k={top_k}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_top_k"


def test_errors_carry_the_request_id_too(client):
    response = client.post("/classify", data=b"cat", content_type="text/plain", headers={"X-Request-ID": "err-7"})
    assert response.status_code == 415 and response.headers["X-Request-ID"] == "err-7"
    assert len(client.get("/nothing").headers["X-Request-ID"]) == 32


def test_body_over_the_limit_is_413(make_app, jpeg):
    client = make_app(MAX_BODY_BYTES="2048").test_client()
    response = client.post("/classify", data=jpeg, content_type="image/jpeg")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "payload_too_large"


def test_too_many_pixels_is_413(make_app, jpeg):
    client = make_app(MAX_PIXELS="1000").test_client()
    response = upload(client, jpeg)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_many_pixels"


def test_wrong_method_and_unknown_path(client):
    wrong = client.get("/classify")
    assert wrong.status_code == 405 and wrong.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]
    missing = client.get("/nothing")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_health_and_readiness(make_app):
    healthy = make_app().test_client()
    assert healthy.get("/healthz").get_json() == {"status": "alive"}
    ready = healthy.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["ready"] is True and body["draining"] is False
    assert body["backends"]["primary"] == {
        "url": "grpc://127.0.0.1:1",
        "model": "wide_resnet50_2",
        "state": "AVAILABLE",
        "circuit": "closed",
    }
    degraded = make_app(primary={"error": "unavailable"}).test_client().get("/readyz")
    assert degraded.status_code == 200 and degraded.get_json()["backends"]["primary"]["state"].startswith("UNAVAILABLE")
    down = make_app(primary={"error": "unavailable"}, fallback={"error": "unavailable"}).test_client().get("/readyz")
    assert down.status_code == 503 and down.get_json()["ready"] is False


def test_draining_turns_readiness_off_but_keeps_serving(make_app, jpeg):
    app = make_app()
    app.extensions["classifier"].draining.set()
    client = app.test_client()
    assert client.get("/readyz").status_code == 503
    assert upload(client, jpeg).status_code == 200


def test_load_shedding_refuses_instead_of_queueing(make_app, jpeg):
    app = make_app(MAX_IN_FLIGHT="1")
    service = app.extensions["classifier"]
    assert service.in_flight.try_enter()  # one request already in flight
    response = upload(app.test_client(), jpeg)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["code"] == "overloaded"
    service.in_flight.leave()
    assert upload(app.test_client(), jpeg).status_code == 200


def test_metrics_count_requests_fallbacks_and_latency(make_app, jpeg):
    app = make_app(primary={"error": "error"})
    client = app.test_client()
    upload(client, jpeg)
    client.post("/classify", data=b"cat", content_type="text/plain")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_classify_requests_total{code="200",model="mobilenet_v3_large"} 1.0' in text
    assert 'gateway_classify_requests_total{code="415",model="none"} 1.0' in text
    assert 'gateway_fallback_answers_total{reason="error"} 1.0' in text
    assert 'gateway_stage_duration_seconds_count{stage="decode"} 1.0' in text
    assert 'gateway_backend_request_duration_seconds_count{backend="primary",outcome="error"} 1.0' in text
    assert 'gateway_circuit_state{backend="primary"} 0.0' in text


def test_every_classify_answer_is_counted_once_and_other_paths_never(make_app, jpeg, monkeypatch):
    app = make_app()
    client = app.test_client()
    service = app.extensions["classifier"]

    def broken(*_args, **_kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(service.router, "classify", broken)
    monkeypatch.setattr(service, "backend_states", broken)
    assert upload(client, jpeg).status_code == 500
    assert client.get("/classify").status_code == 405
    assert client.get("/readyz").status_code == 500
    assert client.get("/readyz").get_json()["error"]["code"] == "internal_error"
    text = client.get("/metrics").get_data(as_text=True)
    counted = [line for line in text.splitlines() if line.startswith("gateway_classify_requests_total")]
    assert sorted(counted) == [
        'gateway_classify_requests_total{code="405",model="none"} 1.0',
        'gateway_classify_requests_total{code="500",model="none"} 1.0',
    ]


def test_each_backend_gets_its_own_resize_policy(make_app, jpeg):
    from gateway.imaging import ResizePolicy, decode, to_tensor

    app = make_app(primary={"error": "error"})
    upload(app.test_client(), jpeg)
    image = decode(jpeg, 10**8, 232)
    primary, fallback = app.clients["primary"].batches[0], app.clients["fallback"].batches[0]
    assert (primary == to_tensor(image, ResizePolicy(232))).all()
    assert (fallback == to_tensor(image, ResizePolicy(256))).all()
    assert not (primary == fallback).all()


@pytest.mark.parametrize(
    ("make", "env"),
    [
        (hostile_images.flat_webp, {}),  # 2 KB on the wire, 50 MP decoded
        (hostile_images.sixteen_bit_png, {}),
        (lambda: hostile_images.rgba_png(2000), {"MEMORY_BUDGET_BYTES": str(40 << 20)}),
    ],
)
def test_decoding_over_the_memory_budget_is_413(make_app, make, env):
    client = make_app(**env).test_client()
    response = client.post("/classify", data=make(), content_type="image/png")
    assert response.status_code == 413, response.data
    assert response.get_json()["error"]["code"] == "too_many_pixels"
    assert "MEMORY_BUDGET_BYTES" in response.get_json()["error"]["message"]
    assert client.application.extensions["classifier"].memory.used == 0


def test_memory_held_by_other_uploads_is_waited_for_then_503(make_app, jpeg):
    app = make_app(REQUEST_DEADLINE_MS="300", MEMORY_BUDGET_BYTES=str(24 << 20))
    budget = app.extensions["classifier"].memory
    budget.reserve((24 << 20) - 1000, deadline=0)  # other requests hold nearly all of it
    response = upload(app.test_client(), jpeg)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "overloaded"
    budget.release((24 << 20) - 1000)
    assert upload(app.test_client(), jpeg).status_code == 200
    assert budget.used == 0


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (hostile_images.scan_bomb, "too_many_scans"),
        (hostile_images.zero_size_png, "corrupt_image"),
    ],
)
def test_hostile_images_are_422(client, make, code):
    response = client.post("/classify", data=make(), content_type="image/jpeg")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == code


def test_slow_decoding_past_the_deadline_blames_no_backend(make_app, jpeg, monkeypatch):
    app = make_app(REQUEST_DEADLINE_MS="100")
    original = imaging.decode

    def slow_decode(*args, **kwargs):
        time.sleep(0.15)
        return original(*args, **kwargs)

    monkeypatch.setattr(imaging, "decode", slow_decode)
    client = app.test_client()
    for _ in range(8):  # more than BREAKER_FAILURES (5)
        response = upload(client, jpeg)
        assert response.status_code == 503 and response.get_json()["error"]["code"] == "deadline_exceeded"
    assert app.clients["primary"].calls == app.clients["fallback"].calls == 0
    assert all(b.breaker.state.name == "CLOSED" for b in app.extensions["classifier"].backends.values())


def test_readiness_with_a_frozen_primary_answers_within_the_status_timeout(make_app):
    """Seven concurrent /readyz calls with the primary's status call hanging took 2.0 s before
    (queued on a pool of two), so a 2 s readiness probe failed."""
    app = make_app(STATUS_TIMEOUT_MS="500")

    def frozen(timeout_s):
        time.sleep(timeout_s)
        return "UNAVAILABLE (DEADLINE_EXCEEDED)"

    app.clients["primary"].status = frozen
    latencies = []

    def probe():
        started = time.monotonic()
        response = app.test_client().get("/readyz")
        latencies.append(time.monotonic() - started)
        assert response.status_code == 200 and response.get_json()["backends"]["fallback"]["state"] == "AVAILABLE"

    callers = [threading.Thread(target=probe) for _ in range(7)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(latencies) == 7 and max(latencies) < 1.0, latencies


@pytest.mark.parametrize("path", ["//healthz", "//classify", "/readyz//", "/docs//", "/assets//app.js"])
def test_doubled_slashes_get_json_not_an_html_redirect(client, path):
    """werkzeug merges slashes with an HTML 308 that Flask's error handlers never see. PATH_INFO is
    set as a server passes it: the test client would read "//healthz" as a host name."""
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert response.status_code != 308 and response.is_json, (response.status_code, response.data[:80])
