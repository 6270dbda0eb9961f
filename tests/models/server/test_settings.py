"""Model server settings: TF-Serving's variables, validated, errors naming the variable."""

import pytest

from models.server.settings import DEFAULT_PROMETHEUS_PATH, Settings, SettingsError, prometheus_path
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MODEL_NAME"),
        ({"MODEL_NAME": "m", "GRPC_PORT": "abc"}, "GRPC_PORT='abc' is not an integer"),
        ({"MODEL_NAME": "m", "MAX_BATCH": "0"}, "MAX_BATCH=0 is outside 1..4096"),
        ({"MODEL_NAME": "a/b"}, "MODEL_NAME='a/b'"),
        ({"MODEL_NAME": "m", "SHUTDOWN_GRACE_S": "-1"}, "SHUTDOWN_GRACE_S=-1.0 is outside 0.0..600.0"),
        ({"MODEL_NAME": "m", "MAX_EXECUTION_BATCH_SIZE": "65"}, "MAX_EXECUTION_BATCH_SIZE=65 is outside 1..64"),
        (
            {"MODEL_NAME": "m", "MAX_BATCH": "8", "MAX_EXECUTION_BATCH_SIZE": "9"},
            "MAX_EXECUTION_BATCH_SIZE=9 is outside 1..8",
        ),
    ],
)
def test_settings_errors_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Settings.from_env(env)


def test_execution_batch_defaults_to_16_or_what_the_batcher_runs(tmp_path):
    assert Settings.from_env({"MODEL_NAME": "m"}).max_execution_batch == 16
    assert Settings.from_env({"MODEL_NAME": "m", "MAX_BATCH": "4"}).max_execution_batch == 4
    assert Settings.from_env({"MODEL_NAME": "m", "MAX_EXECUTION_BATCH_SIZE": "64"}).max_execution_batch == 64
    config = tmp_path / "batching.config"
    config.write_text("max_batch_size { value: 32 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\n")
    batching = {"MODEL_NAME": "m", "ENABLE_BATCHING": "true", "BATCHING_PARAMETERS_FILE": str(config)}
    assert Settings.from_env(batching).max_execution_batch == 32  # its padded batches keep their interpreters
    config.write_text(
        "max_batch_size { value: 32 }\nenable_large_batch_splitting { value: true }\n"
        "max_execution_batch_size { value: 8 }\n"
    )
    assert Settings.from_env(batching).max_execution_batch == 8


def test_drain_grace_is_a_setting():
    assert Settings.from_env({"MODEL_NAME": "m"}).shutdown_grace_s == 5.0
    assert Settings.from_env({"MODEL_NAME": "m", "SHUTDOWN_GRACE_S": "0.5"}).shutdown_grace_s == 0.5


def test_monitoring_config_in_tfserving_format(tmp_path):
    assert prometheus_path(str(REPO / "models" / "primary" / "monitoring.config")) == DEFAULT_PROMETHEUS_PATH
    custom = tmp_path / "monitoring.config"
    custom.write_text('prometheus_config { enable: true, path: "/metrics" }\n')
    assert prometheus_path(str(custom)) == "/metrics"
    custom.write_text("prometheus_config { enable: false }\n")
    assert prometheus_path(str(custom)) is None
    assert prometheus_path("") is None


@pytest.mark.parametrize(
    "text",
    [
        "prometheus_config { enable: yes }",
        "prometheus { enable: true }",
        'prometheus_config { enable: true, path: "metrics" }',
    ],
)
def test_bad_monitoring_config_names_the_variable(tmp_path, text):
    bad = tmp_path / "monitoring.config"
    bad.write_text(text)
    with pytest.raises(SettingsError, match="MONITORING_CONFIG_FILE="):
        prometheus_path(str(bad))


def test_missing_monitoring_config_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="MONITORING_CONFIG_FILE=.*cannot read"):
        prometheus_path(str(tmp_path / "absent.config"))
