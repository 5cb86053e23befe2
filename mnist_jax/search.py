"""Search beyond grids: distributions to sample from, and the strategies that use them.

`lr=loguniform(1e-4,1e-2)`, `model.dropout_rate=uniform(0,0.5)`, `optimizer.b1=choice(0.8,0.9)`
are override values (`overrides.parse` reads them into a `distributions.Distribution`); `draw`
turns them into `samples` concrete settings, deterministically from the search seed. Each key
draws from a stream of its own, so adding a searched key does not move the others' samples.

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

from mnist_jax import commands, sweep
from mnist_jax.config import Config, ConfigError
from mnist_jax.distributions import Distribution
from mnist_jax.overrides import Override

STRATEGIES = ("random", "halving", "pbt")


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


@dataclasses.dataclass(frozen=True)
class Population:
    """What a command trains: its members, the keys that differ between them, and how."""

    members: list[sweep.Member]
    swept: list[str]
    search: Search
    distributions: dict[str, Distribution] = dataclasses.field(default_factory=dict)


def population(config: Config, given: Sequence[Override], search: Search) -> Population:
    """The members `given` asks for: a grid, or `search.samples` draws from its distributions
    (times any grid keys); refuses in one line what the strategy cannot run."""
    given, search = split_overrides(given, search)
    dists = {o.key: o.values[0] for o in given if isinstance(o.values[0], Distribution)}
    grid = [o for o in given if o.key not in dists]
    if dists and search.samples is None:
        key, dist = next(iter(dists.items()))
        raise ConfigError(
            f"{key}={dist.show()} is a distribution: give --samples N (search.samples=N) to "
            "train N settings drawn from it"
        )
    if search.samples is not None and not dists:
        raise ConfigError(
            "--samples draws settings from distributions: give one, e.g. lr=loguniform(1e-4,1e-2)"
        )
    if search.samples is not None and search.strategy is None:
        search = dataclasses.replace(search, strategy="random")
    samples = draw(dists, search.samples, search.seed) if dists else ()
    members = sweep.expand(config, grid, samples)
    check(members, search)
    swept = sweep.shown_keys(grid, members) + list(dists)
    return Population(members, swept, search, dists)


def check(members: Sequence[sweep.Member], search: Search) -> None:
    """A strategy selects on the validation split; halving and PBT train one program."""
    if search.strategy is None:
        return
    if any(m.config.val_split == 0 for m in members):
        raise ConfigError(
            f"--search {search.strategy} selects on a validation split, never the test set: "
            "give val_split=N (e.g. val_split=5000) to hold N training examples out"
        )
    if search.strategy in ("halving", "pbt") and len(sweep.groups(members)) > 1:
        raise ConfigError(
            f"--search {search.strategy} trains its members in one compiled program, but these "
            "differ in structure (a choice of widths, activation, optimizer, ...): fix those, "
            "or search them with --search random"
        )


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
    found, count, epochs = [], members, rung_epochs
    while epochs <= max_epochs:
        found.append((count, epochs))
        if count == 1:
            break
        count, epochs = max(1, count // eta), epochs + rung_epochs
    return found


def ranking(scores: Sequence[float]) -> list[int]:
    """Indices best first by score (higher is better); NaN last; ties keep the earlier index."""
    keyed = [(-s if math.isfinite(s) else math.inf, i) for i, s in enumerate(scores)]
    return [i for _, i in sorted(keyed)]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def command_line(experiment: str, base: Config, chosen: Config, flags: Sequence[str] = ()) -> str:
    """The command that trains `chosen` alone: every setting where it differs from `base`, as
    `KEY=VALUE` (a renamed model, optimizer or schedule with its settings that differ from that
    one's defaults), then `flags` (the `--data-dir` the search read)."""
    base = sweep.complete(base)
    args = []
    for field in sweep.FIELDS:
        value = getattr(chosen, field)
        if value is not None and value != getattr(base, field):
            args.append(f"{field}={_arg(value)}")
    for kind, registry in sweep.SETTINGS.items():
        name = getattr(chosen, f"{kind}_name")
        against = getattr(base, kind)
        if name != getattr(base, f"{kind}_name"):
            args.append(f"{kind}={name}")
            against = registry.defaults(name)
        for setting, value in getattr(chosen, kind).items():
            if _arg(value) != _arg(against.get(setting)):
                args.append(f"{kind}.{setting}={_arg(value)}")
    return commands.python_module(f"experiments.{experiment}", *args, *flags)


def _arg(value) -> str:
    """`value` as an override writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_arg(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)
