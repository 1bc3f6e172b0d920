"""What every settings dataclass shares: the error type, numeric ranges and their check.

A settings dataclass (a config section, e.g. a method's ``ARTConfig``) declares ``CHOICES``
(key -> valid values) and ``LIMITS`` (key -> `Range`); `wsol.config.from_dict` enforces both
and names the key. This module imports nothing from the package, so a method file can define
its settings here without importing `wsol.config` (which imports the method registry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ANY", "ConfigError", "FRACTION_OPEN", "NONNEG", "ONE_UP", "POSITIVE", "Range", "UNIT",
           "check_limits"]


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type or range.

    ``key``: the dotted key (or section) the problem is in, when known ("" for the top level).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric setting: lo <= v <= hi (< where open); floats must also be finite."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, v) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)

    def describe(self, integer: bool) -> str:
        """E.g. 'an integer >= 1', 'a finite number in (0, 10]'."""
        what = "an integer" if integer else "a finite number"
        if self.lo is not None and self.hi is not None:
            return f"{what} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{what} {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{what} {'<' if self.hi_open else '<='} {self.hi:g}"
        return what


ANY = Range()
NONNEG = Range(0)
POSITIVE = Range(0, lo_open=True)
ONE_UP = Range(1)
UNIT = Range(0, 1)
FRACTION_OPEN = Range(0, 1, lo_open=True)       # (0, 1]


def check_limits(cls, values: dict, where: str = "") -> None:
    """Raise ConfigError for a number in `values` outside `cls.LIMITS` (any number: finite)."""
    limits = getattr(cls, "LIMITS", {})
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        valid = limits.get(key, ANY)
        if value not in valid:
            raise ConfigError(f"{_join(where, key)} must be {valid.describe(isinstance(value, int))}, "
                              f"got {value!r}", key=_join(where, key))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
