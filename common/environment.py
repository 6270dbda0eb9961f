"""Settings read from the environment: typed, range-checked, and errors that name the variable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

N = TypeVar("N", int, float)


class SettingsError(ValueError):
    """A variable is missing or wrong; the message names it and what it accepts."""


class EnvReader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def raw(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def milliseconds(self, name: str, default: int, low: int, high: int) -> float:
        """A duration given in whole milliseconds (checked in them), returned in seconds."""
        return self.int(name, default, low, high) / 1000

    def int(self, name: str, default: int, low: int, high: int) -> int:
        return self._number(name, default, low, high, int, "an integer")

    def float(self, name: str, default: float, low: float, high: float) -> float:
        return self._number(name, default, low, high, float, "a number")

    def bool(self, name: str, default: bool) -> bool:
        raw = self.raw(name).lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={raw!r}: use true or false")

    def _number(self, name: str, default: N, low: N, high: N, parse: Callable[[str], N], kind: str) -> N:
        raw = self.raw(name)
        if not raw:
            return default
        try:
            value = parse(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not {kind}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}={value} is outside {low}..{high}")
        return value
