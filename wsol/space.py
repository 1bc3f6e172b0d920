"""Hyperparameter search spaces: distributions over config keys, seeded sampling, CLI specs.

    space = {"optim.lr": LogUniform(1e-5, 1), "method.art.lam": LogUniform(0.05, 5),
             "method.art.bn_stats": Choice(["all", "ce"]), "train.batch_size": Relative([0.5, 1, 2])}
    settings = sample(space, seed=0, trial=3, base={"train.batch_size": 32})   # {key: value}
    parse_spec("loguniform:1e-4:1e-1")                                          # -> LogUniform(0.0001, 0.1)

Every method declares its space beside its code (`TrainingMethod.search_space(cfg)`,
wsol.methods); `tools/search.py` samples it. Trial `i` of a search with seed `s` draws from its
own generator, seeded by (s, i): adding trials later never changes the earlier ones. A bound
may name an earlier key of the same space (SPG's high threshold above its low one):
``Uniform("method.spg.threshold_1l", 1)``. Importing this module is light (no torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Choice", "Distribution", "IntUniform", "InverseUniform", "LogUniform", "Relative", "Uniform",
           "format_value", "parse_spec", "sample", "space_to_json"]

Bound = float | str   # a number, or the key of an earlier draw


class Distribution:
    """A distribution over one config value; `draw(rng, drawn, base)` -> the value."""

    def draw(self, rng: np.random.Generator, drawn: dict, base: Any = None) -> Any:
        raise NotImplementedError

    def spec(self) -> str:
        """The CLI form (`parse_spec` reads it back)."""
        raise NotImplementedError


def _bound(b: Bound, drawn: dict) -> float:
    if isinstance(b, str):
        if b not in drawn:
            raise ValueError(f"bound {b!r} names no earlier key of the space")
        return float(drawn[b])
    return float(b)


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on [lo, hi]."""

    lo: Bound
    hi: Bound

    def draw(self, rng, drawn, base=None):
        lo, hi = _bound(self.lo, drawn), _bound(self.hi, drawn)
        return float(rng.uniform(lo, hi)) if hi > lo else lo

    def spec(self) -> str:
        return f"uniform:{self.lo}:{self.hi}"


@dataclass(frozen=True)
class LogUniform(Distribution):
    """log-uniform on [lo, hi] (lo > 0): every decade equally likely (learning rates, lambda)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not 0 < self.lo <= self.hi:
            raise ValueError(f"loguniform needs 0 < lo <= hi, got {self.lo}, {self.hi}")

    def draw(self, rng, drawn, base=None):
        return float(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))

    def spec(self) -> str:
        return f"loguniform:{self.lo:g}:{self.hi:g}"


@dataclass(frozen=True)
class InverseUniform(Distribution):
    """1 / u with u uniform on (lo, hi] (CutMix's size prior beta)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not 0 <= self.lo < self.hi:
            raise ValueError(f"inverse-uniform needs 0 <= lo < hi, got {self.lo}, {self.hi}")

    def draw(self, rng, drawn, base=None):
        u = self.hi - rng.uniform(0.0, self.hi - self.lo)   # in (lo, hi]
        return float(1.0 / u)

    def spec(self) -> str:
        return f"inverse:{self.lo:g}:{self.hi:g}"


@dataclass(frozen=True)
class IntUniform(Distribution):
    """An integer uniform on {lo, ..., hi}."""

    lo: int
    hi: int

    def draw(self, rng, drawn, base=None):
        return int(rng.integers(int(self.lo), int(self.hi) + 1))

    def spec(self) -> str:
        return f"int:{self.lo}:{self.hi}"


@dataclass(frozen=True)
class Choice(Distribution):
    """One of `values`, equally likely."""

    values: tuple

    def __init__(self, values) -> None:
        object.__setattr__(self, "values", tuple(values))
        if not self.values:
            raise ValueError("choice needs at least one value")

    def draw(self, rng, drawn, base=None):
        v = self.values[int(rng.integers(len(self.values)))]
        return v.item() if isinstance(v, np.generic) else v

    def spec(self) -> str:
        return "choice:" + ",".join(format_value(v) for v in self.values)


@dataclass(frozen=True)
class Relative(Distribution):
    """The base config's value times one of `factors` (equally likely); integer base values
    stay integers (at least 1): e.g. the batch size at half, once or twice the preset's."""

    factors: tuple

    def __init__(self, factors) -> None:
        object.__setattr__(self, "factors", tuple(float(f) for f in factors))
        if not self.factors or min(self.factors) <= 0:
            raise ValueError("relative needs positive factors")

    def draw(self, rng, drawn, base=None):
        if base is None or isinstance(base, bool) or not isinstance(base, (int, float)):
            raise ValueError(f"relative needs a numeric base value, got {base!r}")
        f = self.factors[int(rng.integers(len(self.factors)))]
        return max(1, int(round(base * f))) if isinstance(base, int) else float(base * f)

    def spec(self) -> str:
        return "relative:" + ",".join(f"{f:g}" for f in self.factors)


def sample(space: dict[str, Distribution], seed: int, trial: int, base: dict | None = None) -> dict:
    """Trial `trial`'s settings {key: value}, drawn in the space's order from a generator seeded
    by (seed, trial); `base` gives the base config's values (for `Relative`)."""
    rng = np.random.default_rng([int(seed), int(trial)])
    drawn: dict = {}
    for key, dist in space.items():
        drawn[key] = dist.draw(rng, drawn, (base or {}).get(key))
    return drawn


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{spec!r}: {text!r} is not a number") from None


def _scalar(text: str) -> Any:
    """A choice value: int, float, true/false, or the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> Distribution:
    """A distribution from its CLI form: ``uniform:LO:HI``, ``loguniform:LO:HI``, ``inverse:LO:HI``,
    ``int:LO:HI``, ``choice:A,B,...``, ``relative:F1,F2,...``, or ``fixed:VALUE`` (one value).
    A uniform bound may be an earlier key. ValueError naming the spec and the valid forms."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    forms = "uniform:LO:HI, loguniform:LO:HI, inverse:LO:HI, int:LO:HI, choice:A,B,..., relative:F,..., fixed:VALUE"
    if kind in ("uniform", "loguniform", "inverse", "int"):
        parts = rest.split(":")
        if len(parts) != 2:
            raise ValueError(f"{spec!r}: expected {kind}:LO:HI")
        if kind == "uniform":
            lo, hi = (p if not _is_number(p) else float(p) for p in parts)
            return Uniform(lo, hi)
        lo, hi = _number(parts[0], spec), _number(parts[1], spec)
        if kind == "int":
            if lo != int(lo) or hi != int(hi) or lo > hi:
                raise ValueError(f"{spec!r}: int bounds must be integers with LO <= HI")
            return IntUniform(int(lo), int(hi))
        return LogUniform(lo, hi) if kind == "loguniform" else InverseUniform(lo, hi)
    if kind == "choice" and rest:
        return Choice([_scalar(v) for v in rest.split(",")])
    if kind == "relative" and rest:
        return Relative([_number(v, spec) for v in rest.split(",")])
    if kind == "fixed" and rest:
        return Choice([_scalar(rest)])
    raise ValueError(f"{spec!r} is not a distribution; valid forms: {forms}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_value(v: Any) -> str:
    """A value as `--set` takes it (floats with full precision, booleans lower-case)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def format_short(v: Any) -> str:
    """A value for a table: floats to 4 significant digits, anything else as format_value."""
    return f"{v:.4g}" if isinstance(v, float) else format_value(v)


def space_to_json(space: dict[str, Distribution]) -> dict[str, str]:
    """{key: CLI spec} (what search.json records)."""
    return {k: d.spec() for k, d in space.items()}
