"""Model server settings: TF-Serving's variables, validated, errors naming the variable."""

import pytest

from models.server.settings import Settings, SettingsError


@pytest.mark.parametrize(("env", "message"), [
    ({}, "MODEL_NAME"),
    ({"MODEL_NAME": "m", "GRPC_PORT": "abc"}, "GRPC_PORT='abc' is not an integer"),
    ({"MODEL_NAME": "m", "MAX_BATCH": "0"}, "MAX_BATCH=0 is outside 1..4096"),
    ({"MODEL_NAME": "a/b"}, "MODEL_NAME='a/b'"),
    ({"MODEL_NAME": "m", "SHUTDOWN_GRACE_S": "-1"}, "SHUTDOWN_GRACE_S=-1.0 is outside 0.0..600.0"),
])
def test_settings_errors_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Settings.from_env(env)


def test_drain_grace_is_a_setting():
    assert Settings.from_env({"MODEL_NAME": "m"}).shutdown_grace_s == 5.0
    assert Settings.from_env({"MODEL_NAME": "m", "SHUTDOWN_GRACE_S": "0.5"}).shutdown_grace_s == 0.5
