"""Distributions a search samples settings from: `loguniform(A,B)`, `uniform(A,B)`,
`choice(X,Y,...)`, written as override values (`overrides.parse` reads them)."""

import dataclasses
import math

import numpy as np

from mnist_jax.config import ConfigError

KINDS = ("loguniform", "uniform", "choice")
FORMS = "loguniform(A,B), uniform(A,B) or choice(X,Y,...)"


@dataclasses.dataclass(frozen=True)
class Distribution:
    """Where a searched key's values come from: `loguniform`/`uniform` over `[low, high]`, or
    `choice` among `values` (numbers, names, lists: a structural choice makes groups)."""

    kind: str
    values: tuple  # (low, high) for the two ranges

    def __post_init__(self):
        where = f"{self.kind}({','.join(map(str, self.values))})"
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: unknown distribution; write {FORMS}")
        if self.kind == "choice":
            if not self.values:
                raise ConfigError(f"{where}: choice needs at least one value")
            return
        if len(self.values) != 2 or not all(_is_number(v) for v in self.values):
            raise ConfigError(f"{where}: {self.kind} takes two numbers, low and high")
        low, high = self.values
        if not low < high:
            raise ConfigError(f"{where}: the low end must be below the high end")
        if self.kind == "loguniform" and low <= 0:
            raise ConfigError(f"{where}: loguniform needs a positive low end")

    @property
    def is_range(self) -> bool:
        return self.kind != "choice"

    def sample(self, rng: np.random.Generator, count: int) -> list:
        """`count` values, each inside the range (or one of the choices)."""
        if self.kind == "choice":
            return [self.values[i] for i in rng.integers(0, len(self.values), count)]
        low, high = (float(v) for v in self.values)
        if self.kind == "loguniform":
            drawn = np.exp(rng.uniform(math.log(low), math.log(high), count))
        else:
            drawn = rng.uniform(low, high, count)
        return [float(v) for v in np.clip(drawn, low, high)]  # exp/log may round past an end

    def show(self) -> str:
        return f"{self.kind}({','.join(_show(v) for v in self.values)})"


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
