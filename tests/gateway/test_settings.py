import json

import pytest

from gateway.settings import Settings, SettingsError
from tests.gateway.fakes import GATEWAY_ENV


def test_defaults():
    settings = Settings.from_env(GATEWAY_ENV)
    assert settings.primary.protocol == "grpc" and settings.primary.target == "127.0.0.1:1"
    assert settings.primary.policy.resize_shorter == 232 and settings.fallback.policy.resize_shorter == 256
    assert settings.deadline_s == 2.0 and settings.primary_timeout_s == 2.0 and settings.fallback_reserve_s == 0.4
    assert settings.max_body_bytes == 10 << 20 and settings.threads > settings.max_in_flight
    assert settings.min_call_s == 0.05 and settings.probe_port is None


def test_no_fallback_reserve_is_allowed_whatever_the_minimum_call():
    env = {**GATEWAY_ENV, "FALLBACK_RESERVE_MS": "0", "MIN_MODEL_CALL_MS": "100"}
    assert Settings.from_env(env).fallback_reserve_s == 0


def test_rest_backend_and_fallback_only():
    settings = Settings.from_env({"FALLBACK_URL": "http://fallback", "FALLBACK_MODEL": "m"})
    assert settings.primary is None and settings.fallback.protocol == "rest"
    assert settings.fallback.target == "http://fallback:8501"


def test_policy_from_an_export_manifest(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"preprocessing": {"resize_shorter": 240, "crop": 224, "interpolation": "bicubic"}}))
    settings = Settings.from_env({**GATEWAY_ENV, "PRIMARY_MANIFEST": str(manifest), "PRIMARY_RESIZE_SHORTER": ""})
    assert settings.primary.policy.resize_shorter == 240 and settings.primary.policy.interpolation == "bicubic"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRIMARY_URL": "", "FALLBACK_URL": ""}, "set PRIMARY_URL, FALLBACK_URL or both"),
        ({"PRIMARY_URL": "ftp://x:1"}, "PRIMARY_URL='ftp://x:1'"),
        ({"PRIMARY_URL": "grpc://x:port"}, "invalid port"),
        ({"FALLBACK_MODEL": ""}, "FALLBACK_MODEL is required"),
        ({"REQUEST_DEADLINE_MS": "soon"}, "REQUEST_DEADLINE_MS='soon' is not an integer"),
        ({"REQUEST_DEADLINE_MS": "10"}, "REQUEST_DEADLINE_MS=10 is outside"),
        ({"HEDGE": "maybe"}, "HEDGE='maybe'"),
        ({"HEDGE_MAX_FRACTION": "2"}, "HEDGE_MAX_FRACTION=2.0 is outside"),
        ({"HEDGE_MIN_MS": "500", "HEDGE_MAX_MS": "100"}, "HEDGE_MIN_MS=500 exceeds HEDGE_MAX_MS=100"),
        ({"THREADS": "4", "MAX_IN_FLIGHT": "8"}, "THREADS=4 must exceed MAX_IN_FLIGHT=8"),
        ({"PRIMARY_INTERPOLATION": "magic"}, "PRIMARY_RESIZE_SHORTER/PRIMARY_INTERPOLATION"),
        ({"PRIMARY_MANIFEST": "/nonexistent.json"}, "PRIMARY_MANIFEST=/nonexistent.json"),
        ({"LABELS_PATH": "/nonexistent"}, "LABELS_PATH=/nonexistent"),
        ({"MIN_MODEL_CALL_MS": "0"}, "MIN_MODEL_CALL_MS=0 is outside 1..2000"),
        ({"PORT": "8080", "PROBE_PORT": "8080"}, "PROBE_PORT=8080 must differ from PORT"),
        ({"PROBE_PORT": "65536"}, "PROBE_PORT=65536 is outside 0..65535"),
        ({"PRIMARY_TIMEOUT_MS": "30"}, "PRIMARY_TIMEOUT_MS=30 is under MIN_MODEL_CALL_MS=50"),
        (
            {"FALLBACK_RESERVE_MS": "80", "MIN_MODEL_CALL_MS": "100"},
            "FALLBACK_RESERVE_MS=80 is under MIN_MODEL_CALL_MS=100",
        ),
    ],
)
def test_errors_name_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GATEWAY_ENV, **env})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({}, "gateway: set PRIMARY_URL, FALLBACK_URL or both (for example grpc://localhost:8500)"),
        (
            {"FALLBACK_URL": "grpc://x:1", "FALLBACK_MODEL": "m", "MAX_IN_FLIGHT": "lots"},
            "gateway: MAX_IN_FLIGHT='lots' is not an integer",
        ),
    ],
)
def test_the_process_stops_with_one_line_naming_the_variable(env, line):
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == line


def test_durations_are_held_in_seconds_and_grouped():
    settings = Settings.from_env(
        {
            **GATEWAY_ENV,
            "BREAKER_COOLDOWN_MS": "1500",
            "BREAKER_LATENCY_MS": "250",
            "HEDGE": "true",
            "HEDGE_MIN_MS": "30",
            "PRIMARY_GRACE_MS": "5",
        }
    )
    assert (settings.breaker.failures, settings.breaker.cooldown_s, settings.breaker.max_cooldown_s) == (5, 1.5, 30.0)
    assert settings.breaker.latency_bound_s == 0.25 and settings.status_timeout_s == 0.5
    assert (settings.hedge.enabled, settings.hedge.min_delay_s, settings.hedge.max_delay_s) == (True, 0.03, 0.8)
    assert settings.hedge.primary_grace_s == 0.005
    assert Settings.from_env(GATEWAY_ENV).breaker.latency_bound_s is None, "0 turns the latency bound off"
