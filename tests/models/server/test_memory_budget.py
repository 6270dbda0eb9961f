"""REST predicts reserve their parse's peak from a MemoryBudget before reading the body."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from common.memory_budget import MemoryBudget
from local_mode.processes import ModelServer
from models.server import json_tensor, rest
from models.server.rest import PEAK_PER_BODY_BYTE, create_rest_app
from models.server.settings import Settings
from models.server.versions import ModelVersions, single_model
from tests.models.server.conftest import MOBILENET, run_server

PREDICT = f"/v1/models/{MOBILENET}:predict"


@pytest.fixture(scope="module")
def versions(exported_models):
    settings = Settings.from_env({"MODEL_NAME": MOBILENET, "MODEL_BASE_PATH": str(exported_models)})
    loaded = ModelVersions(settings, single_model(settings))
    loaded.poll()
    return loaded


@pytest.fixture
def body(images) -> bytes:
    return json.dumps({"instances": images[:1].tolist()}).encode()


@pytest.fixture
def parses(monkeypatch) -> list[int]:
    """Counts json_tensor.loads calls, so a test can tell a refusal came before the parse."""
    calls: list[int] = []
    real = json_tensor.loads

    def counting(data: bytes):
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(rest.json_tensor, "loads", counting)
    return calls


def test_a_body_whose_parse_can_never_fit_is_a_json_413_before_it_is_parsed(versions, body, parses):
    memory = MemoryBudget(PEAK_PER_BODY_BYTE * len(body) - 1)
    with create_rest_app(versions, 64 << 20, memory, 5.0).test_client().post(PREDICT, data=body) as response:
        assert response.status_code == 413
        assert "MEMORY_BUDGET_BYTES" in response.get_json()["error"]
    assert parses == [] and memory.used == 0


def test_the_parse_holds_its_peak_and_gives_it_back_when_answered(versions, body, monkeypatch):
    memory = MemoryBudget(PEAK_PER_BODY_BYTE * len(body))
    held_while_parsing: list[int] = []
    real = json_tensor.loads
    monkeypatch.setattr(rest.json_tensor, "loads", lambda data: held_while_parsing.append(memory.used) or real(data))
    with create_rest_app(versions, 64 << 20, memory, 5.0).test_client().post(PREDICT, data=body) as response:
        assert response.status_code == 200 and len(response.get_json()["predictions"]) == 1
    assert held_while_parsing == [PEAK_PER_BODY_BYTE * len(body)]
    assert memory.used == 0


def test_a_failed_predict_gives_its_reservation_back(versions):
    memory = MemoryBudget(1 << 20)
    client = create_rest_app(versions, 64 << 20, memory, 5.0).test_client()
    with client.post(PREDICT, data=b'{"instances": [[1, 2], [3]]}') as response:
        assert response.status_code == 400
    with client.post(PREDICT, data=b"{not json") as response:
        assert response.status_code == 400
    assert memory.used == 0


def test_a_predict_that_cannot_get_room_in_time_is_a_json_503_before_it_is_parsed(versions, body, parses):
    memory = MemoryBudget(PEAK_PER_BODY_BYTE * len(body))
    memory.reserve(1, time.monotonic())  # another request in flight
    started = time.monotonic()
    with create_rest_app(versions, 64 << 20, memory, 0.2).test_client().post(PREDICT, data=body) as response:
        assert response.status_code == 503
        assert "busy" in response.get_json()["error"]
    assert 0.2 <= time.monotonic() - started < 5
    assert parses == [] and memory.used == 1


def test_a_predict_waits_for_room_and_goes_ahead_when_another_answers(versions, body):
    memory = MemoryBudget(PEAK_PER_BODY_BYTE * len(body))
    memory.reserve(1, time.monotonic())
    threading.Timer(0.2, memory.release, (1,)).start()
    with create_rest_app(versions, 64 << 20, memory, 10.0).test_client().post(PREDICT, data=body) as response:
        assert response.status_code == 200
    assert memory.used == 0


SERVER_BUDGET = 20 << 20  # one 2-image body's parse (~13 MB), not two


def _fits_once(body: bytes) -> bool:
    return PEAK_PER_BODY_BYTE * len(body) <= SERVER_BUDGET < 2 * PEAK_PER_BODY_BYTE * len(body)


@pytest.fixture(scope="module")
def budgeted_server(exported_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "server.log"
    env = {"MEMORY_BUDGET_BYTES": str(SERVER_BUDGET), "MEMORY_WAIT_S": "30"}
    with ModelServer(exported_models, MOBILENET, log, **env) as running:
        running.start()
        yield running


def test_over_real_http_an_over_budget_body_is_a_json_413(budgeted_server, images):
    four = json.dumps({"instances": np.concatenate([images, images]).tolist()}).encode()
    assert PEAK_PER_BODY_BYTE * len(four) > SERVER_BUDGET
    response = requests.post(budgeted_server.rest + PREDICT, data=four, timeout=30)
    assert response.status_code == 413
    assert "MEMORY_BUDGET_BYTES" in response.json()["error"]


def test_over_real_http_concurrent_predicts_take_turns_and_all_answer(budgeted_server, images):
    body = json.dumps({"instances": images.tolist()}).encode()
    assert _fits_once(body)

    def predict(_: int) -> int:
        return requests.post(budgeted_server.rest + PREDICT, data=body, timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(predict, range(4))) == [200] * 4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEMORY_BUDGET_BYTES": "1000"}, "MEMORY_BUDGET_BYTES=1000 is outside"),
        ({"MEMORY_WAIT_S": "-1"}, "MEMORY_WAIT_S=-1.0 is outside"),
    ],
)
def test_memory_settings_are_checked_at_start(env, message):
    stopped = run_server({"MODEL_NAME": MOBILENET, **env})
    assert stopped.returncode == 2 and message in stopped.stderr
