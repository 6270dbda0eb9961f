"""Batches: several images in one request, answered in order, one tensor per backend call."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile
from urllib3 import encode_multipart_formdata

from gateway import imaging
from gateway.url_fetch import UrlFetcher
from tests.gateway.test_url_fetch import TABLE, Resolver


def solid_png(value: int) -> bytes:
    """A solid-colour image: the fake backends (top=None) answer its pixel value as the top class."""
    buffer = io.BytesIO()
    Image.new("RGB", (300, 260), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


def post_parts(client, parts: list[bytes], path="/classify", field="file"):
    body, content_type = encode_multipart_formdata([(field, (f"{i}.png", data)) for i, data in enumerate(parts)])
    return client.post(path, data=body, content_type=content_type)


def tops(body) -> list:
    return [r["predictions"][0]["index"] if "predictions" in r else r["error"]["code"] for r in body["results"]]


def test_a_mixed_batch_is_answered_in_order_with_one_call_per_backend(make_app):
    app = make_app(primary={"top": None})
    response = post_parts(
        app.test_client(), [solid_png(10), b"just text", solid_png(40), b"", solid_png(70), solid_png(200)[:300]]
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert tops(body) == [10, "unsupported_media_type", 40, "empty_file", 70, "corrupt_image"]
    assert all(r["error"]["message"] for r in body["results"] if "error" in r)
    assert body["model"] == "wide_resnet50_2" and body["fallback"] is False and body["fallback_reason"] is None
    assert set(body["timings_ms"]) == {"decode", "preprocess", "infer", "total"}
    primary = app.clients["primary"]
    assert primary.calls == 1 and primary.batches[0].shape == (3, 224, 224, 3)
    assert app.clients["fallback"].calls == 0
    assert response.headers["X-Model"] == "wide_resnet50_2"


def test_the_fallback_answers_the_whole_batch_when_the_primary_fails(make_app):
    app = make_app(primary={"error": "unavailable"}, fallback={"top": None})
    body = post_parts(app.test_client(), [solid_png(5), solid_png(6)], path="/").get_json()
    assert tops(body) == [5, 6]
    assert (body["model"], body["fallback"], body["fallback_reason"]) == ("mobilenet_v3_large", True, "unavailable")
    assert app.clients["fallback"].calls == 1 and app.clients["fallback"].batches[0].shape == (2, 224, 224, 3)


def test_the_deadline_applies_to_the_batch(make_app):
    app = make_app(
        primary={"delay_s": 2.0}, fallback={"top": None}, REQUEST_DEADLINE_MS="400", FALLBACK_RESERVE_MS="200"
    )
    body = post_parts(app.test_client(), [solid_png(7), solid_png(8), solid_png(9)]).get_json()
    assert tops(body) == [7, 8, 9] and body["fallback_reason"] == "timeout"
    assert body["timings_ms"]["total"] < 1000


def test_an_open_circuit_sends_the_batch_straight_to_the_fallback(make_app):
    app = make_app(primary={"error": "error"}, fallback={"top": None}, BREAKER_FAILURES="1")
    client = app.test_client()
    post_parts(client, [solid_png(1), solid_png(2)])
    body = post_parts(client, [solid_png(3), solid_png(4)]).get_json()
    assert tops(body) == [3, 4] and body["fallback_reason"] == "circuit_open"
    assert app.clients["primary"].calls == 1


def test_no_model_answering_fails_the_whole_batch(make_app):
    app = make_app(primary={"error": "unavailable"}, fallback={"error": "error"})
    response = post_parts(app.test_client(), [solid_png(1), solid_png(2)])
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "models_unavailable"


def test_a_batch_of_only_bad_images_is_answered_without_a_model(make_app):
    app = make_app()
    response = post_parts(app.test_client(), [b"text", b""])
    assert response.status_code == 200
    body = response.get_json()
    assert tops(body) == ["unsupported_media_type", "empty_file"] and body["model"] is None
    assert app.clients["primary"].calls == app.clients["fallback"].calls == 0


def test_more_than_max_batch_images_is_refused(make_app):
    client = make_app(MAX_BATCH_IMAGES="2").test_client()
    response = post_parts(client, [solid_png(1)] * 3)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "too_many_images"
    assert "MAX_BATCH_IMAGES=2" in response.get_json()["error"]["message"]
    assert post_parts(client, [solid_png(1)] * 2).status_code == 200


def test_one_part_keeps_the_single_answer(make_app):
    body = post_parts(make_app(primary={"top": None}).test_client(), [solid_png(33)], field="image").get_json()
    assert "results" not in body and body["predictions"][0]["index"] == 33


def test_a_batch_of_urls(make_app, image_origin):
    origin = image_origin(max_bytes=1 << 20)
    origin.files["/grey.png"] = solid_png(90)
    app = make_app(
        primary={"top": None},
        URL_FETCH="allowlist",
        URL_FETCH_ALLOWLIST="images.test",
        URL_FETCH_ALLOW_NETWORKS="127.0.0.1/32",
    )
    service = app.extensions["classifier"]
    service.fetcher = UrlFetcher(service.settings.url_fetch, Resolver(TABLE))
    base = f"http://images.test:{origin.port}"
    response = app.test_client().post(
        "/classify",
        json={
            "urls": [
                f"{base}/grey.png",
                "http://10.0.0.1/cat.png",
                f"{base}/notes.txt",
                f"{base}/missing.png",
                f"{base}/grey.png",
            ]
        },
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert tops(body) == [90, "url_not_allowed", "unsupported_media_type", "url_fetch_failed", 90]
    assert body["timings_ms"]["fetch"] > 0 and app.clients["primary"].batches[0].shape == (2, 224, 224, 3)


@pytest.mark.parametrize(
    "body", [{"urls": []}, {"urls": "http://x/a.png"}, {"urls": ["http://x/a.png", 3]}, {"url": ""}, ["http://x/a.png"]]
)
def test_json_of_another_shape_is_refused(client, body):
    response = client.post("/classify", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_json"


def test_urls_while_url_fetch_is_off(client):
    response = client.post("/classify", json={"urls": ["https://example.com/a.png"]})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "url_fetch_disabled"


def test_the_default_batch_fits_the_gpu_primarys_tf_serving_batches():
    """TF-Serving refuses a request larger than its max_batch_size (shared_batch_scheduler.h)."""
    import re

    from gateway.settings import Settings
    from tests.conftest import REPO
    from tests.gateway.fakes import GATEWAY_ENV

    config = (REPO / "models" / "primary" / "batching.config").read_text()
    max_batch_size = int(re.search(r"max_batch_size \{ value: (\d+) \}", config).group(1))
    assert Settings.from_env(GATEWAY_ENV).max_batch_images <= max_batch_size


def solid_png_of(value: int, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (value, value, value)).save(buffer, format="PNG")  # a few KB: one colour
    return buffer.getvalue()


def test_images_of_a_batch_over_the_memory_budget_are_413_before_their_pixels_are_decoded(make_app, monkeypatch):
    """The budget holds the body, the first image and a small one, not the second's decode besides them."""
    parts = [solid_png_of(10, (1500, 1500)), solid_png_of(20, (1600, 1600)), solid_png(30)]
    body, content_type = encode_multipart_formdata([("file", (f"{i}.png", data)) for i, data in enumerate(parts)])
    second = Image.open(io.BytesIO(parts[1]))
    held_before_second = 2 * len(body) + 1500 * 1500 * 4  # the body and its copy, then the first image as RGBA
    budget = held_before_second + imaging.peak_bytes(second, second.size, len(parts[1])) - 1
    app = make_app(primary={"top": None}, MAX_BODY_BYTES="1048576", MEMORY_BUDGET_BYTES=str(budget))
    loaded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def recording_load(image):
        loaded.append(image.size)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    response = app.test_client().post("/classify", data=body, content_type=content_type)
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert tops(response.get_json()) == [10, "too_many_pixels", 30]
    assert "MEMORY_BUDGET_BYTES" in results[1]["error"]["message"]
    assert set(loaded) == {(1500, 1500), (300, 260)}, "the second image is refused before it is decoded"
    assert app.extensions["classifier"].memory.used == 0
    assert app.clients["primary"].batches[0].shape == (2, 224, 224, 3)


def test_a_single_image_over_the_memory_budget_is_413_before_its_pixels_are_decoded(make_app, monkeypatch):
    data = solid_png_of(10, (1600, 1600))
    app = make_app(MAX_BODY_BYTES="1048576", MEMORY_BUDGET_BYTES=str(8 << 20))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: pytest.fail(f"decoded {image.size}"))
    response = app.test_client().post("/classify", data=data, content_type="image/png")
    assert response.status_code == 413 and response.content_type == "application/json"
    assert response.get_json()["error"]["code"] == "too_many_pixels"
    assert app.clients["primary"].calls == app.clients["fallback"].calls == 0
