"""Sweeps of any setting: a config and `KEY=VALUE` overrides become members, in groups.

A member is one complete config (one learning rate, one seed, every registered setting filled
in). Members that differ only in float hyperparameters (the rate, the seed, any float setting
of the model, optimizer, schedule or loss) share one compiled program: those floats are data, one
value per member. Members that differ in anything else (widths, activation, optimizer name,
batch size, loss name, metrics, dtype, length) form separate groups, compiled and trained one
after another.
"""

import dataclasses
import itertools
import json
from collections.abc import Sequence
from typing import Any

from mnist_jax import augment, datasets, losses, metrics, models, optim, overrides, steps
from mnist_jax.config import INIT_FROM_KEYS, Config, ConfigError, check, coerce_init_from
from mnist_jax.distributions import Distribution
from mnist_jax.overrides import Override
from mnist_jax.registry import Registry

SETTINGS = {
    "model": models.MODELS,
    "optimizer": optim.OPTIMIZERS,
    "schedule": optim.SCHEDULES,
    "loss": losses.LOSSES,
    "train_step": steps.TRAIN_STEPS,
    "augment": augment.AUGMENTS,
}
# Top-level fields a key may set; each of `SETTINGS`' keys names the registered entry.
FIELDS = (
    "dataset", "lr", "seed", "epochs", "steps", "batch_size", "metrics", "raw_pixels", "dtype",
    "data_seed", "val_split", "init_from",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Member:
    """One trained network: `config` with every setting filled in."""

    config: Config
    hparams: dict[str, Any]  # the swept keys as typed, with this member's values

    @property
    def learning_rate(self) -> float:
        return self.config.lr

    @property
    def seed(self) -> int:
        return self.config.seed

    def shown(self) -> dict[str, Any]:
        """What TensorBoard's HParams shows of it: the swept keys, the rate, the seed, and the
        loss, training step and augmentation with their settings."""
        shown = {**self.hparams, "lr": self.learning_rate, "seed": self.seed}
        for kind in ("loss", "train_step", "augment"):
            shown[kind] = getattr(self.config, f"{kind}_name")
            shown |= {f"{kind}.{k}": v for k, v in getattr(self.config, kind).items()}
        if self.config.init_from:
            shown["init_from"] = self.config.init_from
        return shown


@dataclasses.dataclass(frozen=True)
class Group:
    """Members trained together in one compiled program."""

    index: int
    first: int  # the index of its first member among all members of the sweep
    members: tuple[Member, ...]


def names_in(config: Config) -> dict[str, set[str]]:
    """The registered names `config` uses, by kind: `{"model": {"mlp"}, ...}`."""
    return {kind: {getattr(config, f"{kind}_name")} for kind in SETTINGS}


def valid_keys(config: Config, names: dict[str, set[str]]) -> list[str]:
    """Every key an override may set, for the registered names in play."""
    keys = list(dict.fromkeys([*FIELDS, *INIT_FROM_KEYS, *SETTINGS]))
    for kind, registry in SETTINGS.items():
        for name in names[kind]:
            keys += [f"{kind}.{k}" for k in registry.defaults(name) if f"{kind}.{k}" not in keys]
    return keys


def expand(
    config: Config, given: Sequence[Override], samples: Sequence[dict[str, Any]] = ()
) -> list[Member]:
    """The full grid of `given` over `config`, one member a point, for each of the `samples`
    (settings a search drew: every key a value); refuses what cannot run, before any work, in
    one line."""
    drawn = [Override(k, tuple(s[k] for s in samples)) for k in (samples[0] if samples else ())]
    names = names_in(config)
    for o in [*given, *drawn]:
        if o.key in SETTINGS:
            names[o.key] = {str(v) for v in o.values}
            for name in names[o.key]:
                SETTINGS[o.key].get(name)  # an unknown name is refused here
    keys = valid_keys(config, names)
    for o in [*given, *drawn]:
        if o.key not in keys and (others := _owners(o.key)):
            kind = o.key.partition(".")[0]
            raise ConfigError(
                f"{o.key}: {kind} {'/'.join(sorted(names[kind]))} has no such setting; "
                f"{', '.join(others)} {'has' if len(others) == 1 else 'have'} it "
                f"({kind}={others[0]} {o.key}=...)"
            )
        try:
            overrides.check_key(o.key, keys)
        except overrides.OverrideError as error:
            raise ConfigError(str(error)) from None
    check_lists(config, given)
    swept = [o.key for o in given if len(o.values) > 1] + [o.key for o in drawn]
    members = []
    for sample, point in itertools.product(
        samples or [{}], itertools.product(*(o.values for o in given))
    ):
        assignment = dict(zip((o.key for o in given), point, strict=True)) | sample
        member = complete(apply(config, assignment))
        members.append(Member(member, {k: _typed(member, k) for k in swept}))
    return _with_dataset_shown(members)


def check_lists(config: Config, given: Sequence[Override]) -> None:
    """Refuses `model.hidden=200,100` for a list setting, naming the list meant in brackets,
    rather than sweeping it as one-element lists."""
    names = names_in(config) | {
        o.key: {str(v) for v in o.values} for o in given if o.key in SETTINGS
    }
    for o in given:
        kind, _, setting = o.key.partition(".")
        if kind not in SETTINGS or not setting or len(o.values) < 2:
            continue
        if any(isinstance(v, list | Distribution) for v in o.values):
            continue
        defaults = [
            SETTINGS[kind].defaults(n).get(setting) for n in names[kind] if n in SETTINGS[kind]
        ]
        if any(isinstance(d, list) for d in defaults):
            meant = show_value(list(o.values))
            raise ConfigError(
                f"{o.key} takes a bracketed list: {o.key}={meant} (several lists sweep: "
                f"{o.key}={meant},[...])"
            )


def _with_dataset_shown(members: list[Member]) -> list[Member]:
    """Members whose dataset is not MNIST carry it in their hparams even when it is not swept,
    so that run names, tables, CSV and HParams say what the numbers are of."""
    if all(m.config.dataset == datasets.DEFAULT for m in members) or any(
        "dataset" in m.hparams for m in members
    ):
        return members
    return [Member(m.config, {"dataset": m.config.dataset, **m.hparams}) for m in members]


def shown_keys(given: Sequence[Override], members: Sequence[Member]) -> list[str]:
    """The keys that tell members apart in results: the swept ones, and the dataset when it is
    not MNIST."""
    swept = [o.key for o in given if len(o.values) > 1]
    shown = members and "dataset" in members[0].hparams and "dataset" not in swept
    return ["dataset", *swept] if shown else swept


def _owners(key: str) -> list[str]:
    """The registered names of `key`'s kind that have its setting (`optimizer.weight_decay`:
    adamw)."""
    kind, _, setting = key.partition(".")
    if kind not in SETTINGS or not setting:
        return []
    registry = SETTINGS[kind]
    return [name for name in registry.names() if setting in registry.defaults(name)]


def apply(config: Config, assignment: dict[str, Any]) -> Config:
    """`config` with one value for each key; a renamed model/optimizer/schedule starts from its
    own defaults (the old one's settings do not carry over)."""
    changes: dict[str, Any] = {}
    settings = {kind: dict(getattr(config, kind)) for kind in SETTINGS}
    for kind in SETTINGS:
        if kind in assignment and assignment[kind] != getattr(config, f"{kind}_name"):
            changes[f"{kind}_name"], settings[kind] = assignment[kind], {}
    for key, value in assignment.items():
        kind, _, setting = key.partition(".")
        if key in INIT_FROM_KEYS:
            changes[INIT_FROM_KEYS[key]] = coerce_init_from(key, value)
        elif setting:
            name = changes.get(f"{kind}_name", getattr(config, f"{kind}_name"))
            defaults = SETTINGS[kind].defaults(name)
            if setting not in defaults:
                raise ConfigError(
                    f"{key}: {kind} {name!r} has no setting {setting!r}; its settings: "
                    f"{', '.join(defaults)}"
                )
            settings[kind][setting] = _coerce(key, value, defaults[setting])
        elif key in FIELDS:  # epochs and steps default to None: typed as whole numbers
            defaults = {"epochs": 1, "steps": 1, "metrics": []}
            default = defaults[key] if key in defaults else getattr(Config, key)
            changes[key] = _coerce(key, value, default)
    if "epochs" in assignment and "steps" not in assignment:
        changes["steps"] = None
    if "steps" in assignment and "epochs" not in assignment:
        changes["epochs"] = None
    return dataclasses.replace(config, **changes, **settings)


def _typed(config: Config, key: str):
    """The value of `key` in `config`, as typed there (`model.dropout_rate=0` gives 0.0)."""
    kind, _, setting = key.partition(".")
    if key in INIT_FROM_KEYS:
        return getattr(config, INIT_FROM_KEYS[key])
    if setting:
        return getattr(config, kind)[setting]
    if kind in SETTINGS:
        return getattr(config, f"{kind}_name")
    return getattr(config, key)


def _coerce(key: str, value, default):
    try:
        return overrides.coerce(key, value, default)
    except overrides.OverrideError as error:
        raise ConfigError(str(error)) from None


def complete(config: Config) -> Config:
    """`config` with every registered setting filled in from the defaults, each checked."""
    check(config)
    datasets.get(config.dataset)  # an unknown name is refused here, naming the nearest
    metrics.active(config.metrics)  # an unknown or always-computed name is refused here
    filled = {}
    for kind, registry in SETTINGS.items():
        name = getattr(config, f"{kind}_name")
        filled[kind] = _filled(kind, name, registry, getattr(config, kind))
    activation = filled["model"].get("activation")
    if isinstance(activation, str) and activation not in models.ACTIVATIONS:
        choices = ", ".join(models.ACTIVATIONS)
        raise ConfigError(f"model.activation takes one of {choices}, got {activation!r}")
    return dataclasses.replace(config, **filled)


def _filled(kind: str, name: str, registry: Registry, given: dict[str, Any]) -> dict[str, Any]:
    defaults = registry.defaults(name)
    unknown = [k for k in given if k not in defaults]
    if unknown:
        near = overrides.nearest(unknown[0], defaults)
        hint = f"; did you mean {near!r}?" if near else f"; its settings: {', '.join(defaults)}"
        raise ConfigError(f"{kind} {name!r} has no setting {unknown[0]!r}{hint}")
    filled = {k: _coerce(f"{kind}.{k}", given.get(k, v), v) for k, v in defaults.items()}
    for k, v in filled.items():  # a None default takes what its annotation says: a number
        if defaults[k] is None and v is not None and registry.takes_number(name, k):
            filled[k] = _coerce(f"{kind}.{k}", v, 0.0)
    registry.check(name, filled)
    return filled


def float_hparams(config: Config) -> dict[str, float]:
    """The member's hyperparameters that are data in the compiled program, by key."""
    floats = {"lr": float(config.lr)}
    for kind in SETTINGS:
        for k, v in getattr(config, kind).items():
            if isinstance(v, float):
                floats[f"{kind}.{k}"] = v
    return floats


def with_floats(config: Config, floats: dict[str, float]) -> Config:
    """`config` with the float hyperparameters `floats`, keyed as `float_hparams` keys them."""
    changes: dict[str, Any] = {}
    settings = {kind: dict(getattr(config, kind)) for kind in SETTINGS}
    for key, value in floats.items():
        kind, _, setting = key.partition(".")
        if setting:
            settings[kind][setting] = value
        else:
            changes["lr"] = value
    return dataclasses.replace(config, **changes, **settings)


def structure(config: Config) -> str:
    """What must be equal for members to share a compiled program (floats are data)."""
    record = config.to_json()
    for field in ("name", "lr", "seed", "tutorial", "init_from_member"):  # data, as the rate
        record.pop(field)
    for kind in SETTINGS:
        record[kind] = {
            k: "<float>" if isinstance(v, float) else v for k, v in record[kind].items()
        }
    return json.dumps(record, sort_keys=True)


def groups(members: Sequence[Member]) -> list[Group]:
    """Members by structure, groups in the order their first member appears."""
    by_structure: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        by_structure.setdefault(structure(m.config), []).append(i)
    ordered = sorted(by_structure.values(), key=lambda indices: indices[0])
    result, first = [], 0
    for index, indices in enumerate(ordered):
        result.append(Group(index, first, tuple(members[i] for i in indices)))
        first += len(indices)
    return result


def run_name(member: Member) -> str:
    """A run directory's name: what differs between the members, e.g.
    `dropout_rate_0.25-lr_0.001-seed_0` (the rate and seed always)."""
    values = {k: v for k, v in member.hparams.items() if k not in ("lr", "seed")}
    values |= {"lr": member.learning_rate, "seed": member.seed}
    short = {k.rpartition(".")[2] for k in values}
    ambiguous = len(short) < len(values)
    parts = [f"{k if ambiguous else k.rpartition('.')[2]}_{_show(v)}" for k, v in values.items()]
    return "-".join(parts)


def show_value(value) -> str:
    """A value as an override gives it, floats to 6 digits: `0.001`, `[512,512]`, `true`."""
    if isinstance(value, list):
        return "[" + ",".join(show_value(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _show(value) -> str:
    if isinstance(value, list):
        return "x".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("/", "_")  # emnist/digits: one folder
