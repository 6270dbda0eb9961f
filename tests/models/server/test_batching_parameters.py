from __future__ import annotations

from pathlib import Path

import pytest

from common.environment import EnvReader, SettingsError
from models.server.batching_parameters import BatchingParameters, batching_from_env, read_batching_parameters
from models.server.settings import Settings
from tests.conftest import REPO

SHIPPED = REPO / "models" / "primary" / "batching.config"


def parameters(tmp_path: Path, text: str) -> BatchingParameters:
    path = tmp_path / "batching.config"
    path.write_text(text)
    return read_batching_parameters(path, cores=2)


def test_the_shipped_config_is_read_as_tfserving_reads_it():
    p = read_batching_parameters(SHIPPED, cores=2)
    assert (p.max_batch_size, p.batch_timeout_micros, p.max_enqueued_batches, p.num_batch_threads) == (16, 2000, 64, 4)
    assert p.pad_variable_length_inputs is False and p.large_batch_splitting is False


def test_unset_fields_take_the_scheduler_defaults(tmp_path):
    p = parameters(tmp_path, "max_batch_size { value: 8 }\n")
    assert (p.batch_timeout_micros, p.max_enqueued_batches, p.num_batch_threads) == (0, 10, 2)
    assert p.thread_pool_name == "batch_threads" and p.max_execution_batch_size == 8
    assert parameters(tmp_path, "").max_batch_size == 1000


def test_enable_batching_alone_batches_with_the_defaults():
    p = batching_from_env(EnvReader({"ENABLE_BATCHING": "true"}), cores=3)
    assert p is not None and (p.max_batch_size, p.num_batch_threads) == (1000, 3)
    assert p.thread_pool_name == "model_server_batch_threads"
    assert batching_from_env(EnvReader({}), cores=3) is None


def test_a_file_without_enable_batching_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="BATCHING_PARAMETERS_FILE=.* without ENABLE_BATCHING=true"):
        Settings.from_env({"MODEL_NAME": "m", "BATCHING_PARAMETERS_FILE": str(SHIPPED)})


def test_settings_carry_the_parameters():
    settings = Settings.from_env(
        {"MODEL_NAME": "m", "ENABLE_BATCHING": "true", "BATCHING_PARAMETERS_FILE": str(SHIPPED)}
    )
    assert settings.batching is not None and settings.batching.max_batch_size == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size: 8", "not a TF-Serving BatchingParameters"),  # a wrapper, not a scalar
        ("max_batch_sise { value: 8 }", "not a TF-Serving BatchingParameters"),
        ("max_batch_size { value: 0 }", "max_batch_size is 0"),
        ("max_enqueued_batches { value: -1 }", "max_enqueued_batches is -1"),
        ("num_batch_threads { value: 0 }", "num_batch_threads is 0"),
        ("batch_timeout_micros { value: -5 }", "batch_timeout_micros is -5"),
        ("max_batch_size { value: 8 } allowed_batch_sizes: [2, 4]", "must match max_batch_size; last entry was 4"),
        ("max_batch_size { value: 8 } allowed_batch_sizes: [4, 2, 8]", r"\[4, 2, 8\] must be positive and increasing"),
        (
            "max_batch_size { value: 4 } enable_large_batch_splitting { value: true } "
            "max_execution_batch_size { value: 8 }",
            "max_execution_batch_size 8 is larger than max_batch_size 4",
        ),
        (
            "max_batch_size { value: 8 } enable_large_batch_splitting { value: true } "
            "max_execution_batch_size { value: 4 } allowed_batch_sizes: [2, 8]",
            "must match max_execution_batch_size; last entry was 8; expected 4",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_variable_and_field(tmp_path, text, message):
    with pytest.raises(SettingsError, match=f"BATCHING_PARAMETERS_FILE=.*{message}"):
        parameters(tmp_path, text)


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="BATCHING_PARAMETERS_FILE=.*cannot read it"):
        read_batching_parameters(tmp_path / "missing.config", cores=2)


def test_batches_pad_up_to_the_next_allowed_size(tmp_path):
    p = parameters(tmp_path, "max_batch_size { value: 8 } allowed_batch_sizes: [1, 2, 4, 8]")
    assert [p.padded_size(n) for n in range(1, 9)] == [1, 2, 4, 4, 8, 8, 8, 8]
    assert parameters(tmp_path, "max_batch_size { value: 8 }").padded_size(3) == 3


@pytest.mark.parametrize("service", ["primary", "fallback"])
def test_a_default_gateway_batch_fits_each_shipped_config(service):
    from gateway.settings import Settings as GatewaySettings
    from tests.gateway.fakes import GATEWAY_ENV

    shipped = read_batching_parameters(REPO / "models" / service / "batching.config", cores=2)
    assert GatewaySettings.from_env(GATEWAY_ENV).max_batch_images <= shipped.max_batch_size
