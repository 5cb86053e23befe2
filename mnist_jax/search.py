"""Search beyond grids: distributions to sample from, and the strategies that use them.

`lr=loguniform(1e-4,1e-2)`, `model.dropout_rate=uniform(0,0.5)`, `optimizer.b1=choice(0.8,0.9)`
are override values (`overrides.parse` reads them into a `Distribution`); `draw` turns them into
`samples` concrete settings, deterministically from the search seed. Each key draws from a
stream of its own, so adding a searched key does not move the others' samples.

Strategies (`Search.strategy`): `random` trains every sample to the end; `halving` (successive
halving) trains rungs of `rung_epochs` and keeps the best `1/eta` of each; `pbt`
(population-based training) copies the best members into the worst every `pbt_interval` epochs
and perturbs their float hyperparameters. All select on the validation split, never the test set.
"""

import dataclasses
import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnist_jax.config import ConfigError

STRATEGIES = ("random", "halving", "pbt")
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


@dataclasses.dataclass(frozen=True)
class Search:
    """How members are chosen: `strategy` None trains the grid as given."""

    strategy: str | None = None
    samples: int | None = None  # settings drawn from the distributions
    seed: int = 0  # the search's own randomness: draws, PBT's copies and perturbations
    eta: int = 3  # halving keeps the best 1/eta of each rung
    rung_epochs: int = 1  # epochs each rung trains its members
    pbt_interval: int = 1  # epochs between PBT's exploit-and-explore steps

    def __post_init__(self):
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise ConfigError(f"search takes one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name, low in (("samples", 1), ("seed", 0), ("eta", 2), ("rung_epochs", 1)):
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and value >= low):
                raise ConfigError(f"search.{name} takes a whole number of at least {low}")
        if not (_is_int(self.pbt_interval) and self.pbt_interval >= 1):
            raise ConfigError("search.pbt_interval takes a whole number of at least 1")


# `search=...` and `search.<field>=...` overrides set these fields.
KEYS = {"search": "strategy", **{f"search.{f.name}": f.name for f in dataclasses.fields(Search)}}
del KEYS["search.strategy"]


def split_overrides(given: Sequence, search: Search) -> tuple[list, Search]:
    """The overrides that set the config, and `search` with the `search...` ones applied."""
    changes: dict[str, Any] = {}
    rest = []
    for o in given:
        if o.key not in KEYS:
            rest.append(o)
            continue
        if len(o.values) != 1 or isinstance(o.values[0], Distribution):
            raise ConfigError(f"{o.key} takes one value, not a sweep")
        changes[KEYS[o.key]] = o.values[0]
    return rest, dataclasses.replace(search, **changes)


def draw(distributions: dict[str, Distribution], samples: int, seed: int) -> list[dict]:
    """`samples` settings, one value per key each; key k's values come from a generator
    seeded by (seed, crc32(k)), so they do not depend on the other keys."""
    columns = {
        key: dist.sample(np.random.default_rng([seed, zlib.crc32(key.encode())]), samples)
        for key, dist in distributions.items()
    }
    return [{key: columns[key][i] for key in distributions} for i in range(samples)]


def rungs(members: int, eta: int, rung_epochs: int, max_epochs: int) -> list[tuple[int, int]]:
    """Successive halving's rungs as (members trained, epochs each has trained by its end):
    9 members, eta 3, 1 epoch a rung: [(9, 1), (3, 2), (1, 3)]. Stops once one member has
    trained its rung, or before a rung would pass `max_epochs`."""
    plan, count, epochs = [], members, rung_epochs
    while epochs <= max_epochs:
        plan.append((count, epochs))
        if count == 1:
            break
        count, epochs = max(1, count // eta), epochs + rung_epochs
    return plan


def ranking(scores: Sequence[float]) -> list[int]:
    """Indices best first by score (higher is better); NaN last; ties keep the earlier index."""
    keyed = [(-s if math.isfinite(s) else math.inf, i) for i, s in enumerate(scores)]
    return [i for _, i in sorted(keyed)]


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
