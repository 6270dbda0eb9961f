"""Real processes: LiteRT model servers and the gateway, talking gRPC (and REST) on 127.0.0.1."""

import pytest
import requests

from local_mode.processes import Gateway, ModelServer, free_port
from tests.raw_http import announce_huge_body
from tests.real_weights import CAT_CLASSES, ESPRESSO


@pytest.fixture(scope="module")
def wrn(exported_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("primary") / "log"
    with ModelServer(
        exported_models,
        "wide_resnet50_2",
        log,
        MODEL_FILE="model_int8.tflite",
        INTERPRETERS="1",
        INTERPRETER_THREADS="2",
    ) as server:
        yield server.start(timeout=120)


@pytest.fixture
def small_body_gateway(efficientnet, tmp_path):
    """A fallback-only gateway on the real-weights model that refuses bodies over 1 MiB."""
    with Gateway(
        tmp_path / "log",
        FALLBACK_URL=f"grpc://{efficientnet.grpc_target}",
        FALLBACK_MODEL="efficientnet",
        MAX_BODY_BYTES=str(1 << 20),
    ) as gateway:
        gateway.start()
        yield gateway


def classify(gateway, photo, **kwargs):
    with open(photo, "rb") as handle:
        return requests.post(f"{gateway.url}/classify", files={"file": handle}, timeout=10, **kwargs)


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_primary_down_the_fallback_names_real_photos(efficientnet, shared_dir, tmp_path, protocol):
    fallback_url = (
        f"grpc://{efficientnet.grpc_target}" if protocol == "grpc" else f"http://127.0.0.1:{efficientnet.rest_port}"
    )
    with Gateway(
        tmp_path / "log",
        PRIMARY_URL=f"grpc://127.0.0.1:{free_port()}",
        PRIMARY_MODEL="wide_resnet50_2",
        FALLBACK_URL=fallback_url,
        FALLBACK_MODEL="efficientnet",
    ) as gateway:
        gateway.start()
        cat = classify(gateway, shared_dir / "images" / "chelsea.jpg")
        assert cat.status_code == 200, cat.text
        body = cat.json()
        assert body["fallback"] is True and body["fallback_reason"] == "unavailable"
        assert body["model"] == "efficientnet" and body["predictions"][0]["index"] in CAT_CLASSES
        assert body["predictions"][0]["label"] in ("tabby", "tiger cat", "Egyptian cat", "Persian cat")
        coffee = classify(gateway, shared_dir / "images" / "coffee.jpg").json()
        assert coffee["predictions"][0]["index"] == ESPRESSO and coffee["predictions"][0]["label"] == "espresso"
        assert coffee["predictions"][0]["score"] > 0.9
        ready = requests.get(f"{gateway.url}/readyz").json()
        assert ready["ready"] is True and ready["backends"]["fallback"]["state"] == "AVAILABLE"
        assert ready["backends"]["primary"]["state"].startswith("UNAVAILABLE")


def test_primary_up_answers_with_wrn(efficientnet, wrn, shared_dir, tmp_path):
    with Gateway(
        tmp_path / "log",
        PRIMARY_URL=f"grpc://{wrn.grpc_target}",
        PRIMARY_MODEL="wide_resnet50_2",
        PRIMARY_RESIZE_SHORTER="232",
        FALLBACK_URL=f"grpc://{efficientnet.grpc_target}",
        FALLBACK_MODEL="efficientnet",
        HEDGE="false",
    ) as gateway:
        gateway.start()
        response = classify(gateway, shared_dir / "images" / "rocket.jpg", headers={"X-Request-ID": "e2e-1"})
        body = response.json()
        assert response.status_code == 200 and body["fallback"] is False and body["model"] == "wide_resnet50_2"
        assert body["model_version"] == "1" and body["request_id"] == "e2e-1"
        assert response.headers["X-Model"] == "wide_resnet50_2"


def test_bad_inputs_never_wedge_the_gateway(small_body_gateway, shared_dir):
    gateway = small_body_gateway
    photo = (shared_dir / "images" / "chelsea.jpg").read_bytes()
    bad = [
        ({"data": b"not an image", "headers": {"Content-Type": "image/jpeg"}}, 415),
        ({"data": photo[:5000], "headers": {"Content-Type": "image/jpeg"}}, 422),
        ({"data": b"x" * (2 << 20), "headers": {"Content-Type": "image/jpeg"}}, 413),
        ({"data": b"", "headers": {"Content-Type": "image/jpeg"}}, 400),
    ]
    for kwargs, status in bad * 3:
        response = requests.post(f"{gateway.url}/classify", timeout=10, **kwargs)
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"]
    ok = requests.post(f"{gateway.url}/", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert ok.status_code == 200 and ok.json()["fallback"] is True


def test_oversized_upload_is_refused_before_it_is_read(small_body_gateway):
    """The 413 comes back while the client is still announcing a 1 GiB body."""
    gateway = small_body_gateway
    answer = announce_huge_body(gateway.port, "/classify", "image/jpeg")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "application/json" in answer and "payload_too_large" in answer
