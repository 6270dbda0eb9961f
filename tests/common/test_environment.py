import pytest

from common.environment import EnvReader, SettingsError


@pytest.mark.parametrize(
    ("method", "raw", "expected"),
    [
        ("int", "", 5),
        ("int", " 7 ", 7),
        ("float", "", 5),
        ("float", "2.5", 2.5),
        ("bool", "", True),
        ("bool", "off", False),
        ("bool", "Yes", True),
    ],
)
def test_values_and_defaults(method, raw, expected):
    reader = EnvReader({"X": raw})
    value = reader.bool("X", True) if method == "bool" else getattr(reader, method)("X", 5, 0, 10)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("method", "raw", "message"),
    [
        ("int", "1.5", "X='1.5' is not an integer"),
        ("int", "11", "X=11 is outside 0..10"),
        ("float", "abc", "X='abc' is not a number"),
        ("float", "-0.5", "X=-0.5 is outside 0..10"),
        ("bool", "maybe", "X='maybe': use true or false"),
    ],
)
def test_errors_name_the_variable(method, raw, message):
    reader = EnvReader({"X": raw})
    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        reader.bool("X", True) if method == "bool" else getattr(reader, method)("X", 5, 0, 10)


def test_milliseconds_are_checked_as_given_and_returned_in_seconds():
    assert EnvReader({"T_MS": "250"}).milliseconds("T_MS", 5, 0, 1000) == 0.25
    assert EnvReader({}).milliseconds("T_MS", 5, 0, 1000) == 0.005
    with pytest.raises(SettingsError, match=r"T_MS=2000 is outside 0\.\.1000"):
        EnvReader({"T_MS": "2000"}).milliseconds("T_MS", 5, 0, 1000)


def test_text_falls_back_to_the_default_when_unset_or_blank():
    assert EnvReader({"H": " h "}).text("H", "d") == "h"
    assert EnvReader({"H": " "}).text("H", "d") == "d" and EnvReader({}).text("H", "d") == "d"
