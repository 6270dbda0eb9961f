"""The canary split, its judge and its automatic rollback: unit tests on virtual time, then real
processes (a model server with `stable` and `canary` labels behind a gateway)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry

from gateway.canary import CanaryClient, CanaryJudge
from gateway.settings import CanarySettings, Settings, SettingsError
from local_mode.processes import Gateway, wait_until
from tests.gateway.canary_models import canary_server
from tests.gateway.fakes import GATEWAY_ENV, FakeClient
from tests.models.server.conftest import MOBILENET

SETTINGS = CanarySettings(
    share=0.5,
    window_s=60,
    min_requests=10,
    max_error_rate_increase=0.05,
    max_fallback_rate_increase=0.05,
    max_p95_ratio=1.5,
    p95_slack_s=0.02,
    max_disagreement=0.1,
    grace_s=0.05,
)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_settings_read_and_checked():
    canary = Settings.from_env({**GATEWAY_ENV, "CANARY_SHARE": "0.2", "CANARY_GRACE_MS": "30"}).canary
    assert canary.share == 0.2 and canary.grace_s == 0.03 and canary.window_s == 60 and canary.min_requests == 20
    assert Settings.from_env(GATEWAY_ENV).canary is None
    with pytest.raises(SettingsError, match="CANARY_SHARE=1.5 is outside"):
        Settings.from_env({**GATEWAY_ENV, "CANARY_SHARE": "1.5"})
    with pytest.raises(SettingsError, match="CANARY_SHARE needs PRIMARY_URL"):
        Settings.from_env({**GATEWAY_ENV, "PRIMARY_URL": "", "CANARY_SHARE": "0.1"})


def test_a_good_canary_keeps_its_share():
    judge = CanaryJudge(SETTINGS, Clock())
    for _ in range(50):
        assert judge.record("stable", True, 0.020, True) is None
        assert judge.record("canary", True, 0.022, True) is None
        assert judge.record_agreement(True) is None
    assert judge.state == "active" and judge.share == 0.5


@pytest.mark.parametrize(
    ("canary", "agree", "reason"),
    [
        ((False, 0.02, False), True, "error rate 1.00 vs stable 0.00"),
        ((True, 0.50, False), True, "fallback rate 1.00 vs stable 0.00"),
        ((True, 0.50, True), True, "p95 500 ms vs stable 20 ms"),
        ((True, 0.02, True), False, "top-1 disagreement 1.00"),
    ],
)
def test_a_worse_canary_is_rolled_back_once_it_has_enough_calls(canary, agree, reason):
    judge = CanaryJudge(SETTINGS, Clock())
    verdicts = []
    for _ in range(SETTINGS.min_requests):
        judge.record("stable", True, 0.020, True)
        verdicts += [judge.record("canary", *canary), judge.record_agreement(agree)]
    assert [v for v in verdicts if v] == [reason]
    assert verdicts[: 2 * (SETTINGS.min_requests - 1)] == [None] * 2 * (SETTINGS.min_requests - 1)
    assert judge.state == "rolled_back" and judge.share == 0 and judge.snapshot()["reason"] == reason


def test_old_calls_leave_the_window():
    clock = Clock()
    judge = CanaryJudge(SETTINGS, clock)
    for _ in range(SETTINGS.min_requests - 1):
        judge.record("canary", False, 0.02, False)
    clock.now = SETTINGS.window_s + 1
    assert judge.record("canary", False, 0.02, False) is None  # the nine earlier errors have expired
    assert judge.snapshot()["canary"]["requests"] == 1


def _client(canary_spec: dict, draws: list[float]):
    settings = Settings.from_env({**GATEWAY_ENV, "CANARY_SHARE": "0.5"}).primary
    stable, canary = FakeClient(settings, top=1), FakeClient(settings, top=1, **canary_spec)

    class ByLabel:
        def __init__(self):
            self.settings = settings

        def submit(self, batch, timeout_s, label=None, caller_waits=False):
            return (canary if label == "canary" else stable).submit(batch, timeout_s, label, caller_waits)

    client = CanaryClient(ByLabel(), SETTINGS, CollectorRegistry(), draw=iter(draws).__next__)
    return client, stable, canary


def test_calls_outside_the_share_go_to_stable_only():
    client, stable, canary = _client({}, [0.7])
    client.submit(np.zeros((1, 224, 224, 3), np.uint8), 1.0).result(timeout=5)
    assert stable.labels == ["stable"] and canary.calls == 0


@pytest.mark.parametrize(("draw", "stable_waits", "canary_waits"), [(0.7, [True], []), (0.1, [False], [False])])
def test_only_a_call_to_stable_alone_may_run_on_the_callers_thread(draw, stable_waits, canary_waits):
    client, stable, canary = _client({}, [draw])
    client.submit(np.zeros((1, 224, 224, 3), np.uint8), 1.0, caller_waits=True).result(timeout=5)
    assert (stable.caller_waits, canary.caller_waits) == (stable_waits, canary_waits)


@pytest.mark.parametrize(
    ("spec", "served_by_canary"),
    [
        ({}, True),
        ({"error": "error"}, False),
        ({"delay_s": 0.5}, False),
        ({"error": "timeout", "delay_s": 0.3}, False),
    ],
)
def test_a_canary_call_is_mirrored_and_answered_by_stable_when_the_canary_fails_or_trails(spec, served_by_canary):
    client, stable, canary = _client(spec, [0.1])
    answer = client.submit(np.zeros((1, 224, 224, 3), np.uint8), 1.0).result(timeout=5)
    assert answer.probabilities.shape == (1, 1000)
    assert stable.labels == ["stable"] and canary.labels == ["canary"]
    wait_until(lambda: client.judge.snapshot()["canary"]["requests"] == 1, 5, "the canary call recorded")
    assert client.judge.snapshot()["canary"]["fallback_rate"] == (0.0 if served_by_canary else 1.0)


# Real processes: one model server holding version 1 (stable) and version 2 (canary).


# Margins wide enough that a good canary on a busy 2-core CI machine is not judged worse, narrow
# enough that a canary ~0.7 s slower than stable's ~30 ms is.
CANARY_GATEWAY_ENV = {
    "PRIMARY_MODEL": MOBILENET,
    "HEDGE": "false",
    "CANARY_SHARE": "0.5",
    "CANARY_MIN_REQUESTS": "10",
    "CANARY_WINDOW_S": "120",
    "CANARY_GRACE_MS": "250",
    "CANARY_P95_SLACK_MS": "100",
}


@pytest.mark.parametrize("canary", ["good", "wrong_size", "constant", "slow"])
def test_canary_on_real_processes(tmp_path, exported_models, canary_models, jpeg, canary):
    """A good canary keeps its share; an erroring, disagreeing or slow one is rolled back within the
    window, and no client request fails or falls back meanwhile."""
    tflite = (
        exported_models / MOBILENET / "1" / "model.tflite" if canary == "good" else canary_models / f"{canary}.tflite"
    )
    stable = exported_models / MOBILENET / "1" / "model.tflite"
    server = canary_server(tmp_path / "models", MOBILENET, stable, tflite, tmp_path / "server.log")
    with server:
        server.start()
        status = f"{server.rest}/v1/models/{MOBILENET}"
        both = [{"version": v, "state": "AVAILABLE"} for v in ("1", "2")]
        wait_until(
            lambda: (
                [
                    {k: s[k] for k in ("version", "state")}
                    for s in requests.get(status, timeout=2).json()["model_version_status"]
                ]
                == both
            ),
            30,
            "both versions",
        )
        with Gateway(
            tmp_path / "gateway.log", PRIMARY_URL=f"grpc://{server.grpc_target}", **CANARY_GATEWAY_ENV
        ) as gateway:
            gateway.start()
            answers = [
                requests.post(f"{gateway.url}/classify", files={"file": ("p.jpg", jpeg)}, timeout=10) for _ in range(40)
            ]
            ready = requests.get(f"{gateway.url}/readyz", timeout=5).json()
            metrics = requests.get(f"{gateway.url}/metrics", timeout=5).text
    assert [a.status_code for a in answers] == [200] * 40
    bodies = [a.json() for a in answers]
    assert not any(b["fallback"] for b in bodies), "the fallback model never had to answer"
    versions = {b["model_version"] for b in bodies}
    rollbacks = float(re.search(r"^gateway_canary_rollbacks_total (\S+)$", metrics, re.M)[1])
    if canary == "good":
        assert ready["canary"]["state"] == "active" and ready["canary"]["share"] == 0.5
        assert versions == {"1", "2"} and rollbacks == 0
        assert ready["canary"]["canary"]["requests"] >= 10 and ready["canary"]["disagreement"] == 0
    else:
        assert ready["canary"]["state"] == "rolled_back" and ready["canary"]["share"] == 0, ready
        assert rollbacks == 1 and "canary rolled back: " + ready["canary"]["reason"] in gateway.log()
        assert "gateway_canary_share 0.0" in metrics
        assert ready["canary"]["canary"]["requests"] < 40, "rolled back before the window saw every request"


def test_readyz_shows_the_canary_as_documented(make_app, jpeg):
    import io

    import jsonschema

    from tests.gateway.test_openapi import _schema

    client = make_app(CANARY_SHARE="0.5").test_client()
    for _ in range(4):
        answer = client.post(
            "/classify", data={"file": (io.BytesIO(jpeg), "a.jpg")}, content_type="multipart/form-data"
        )
        assert answer.status_code == 200
    ready = client.get("/readyz").get_json()
    jsonschema.validate(ready, _schema("Readiness"))
    assert ready["canary"]["state"] == "active" and ready["canary"]["share"] == 0.5
    assert client.application.clients["primary"].labels and set(client.application.clients["primary"].labels) <= {
        "stable",
        "canary",
    }
