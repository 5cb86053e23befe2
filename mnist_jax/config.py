"""The one config type every experiment fills in: plain JSON data.

The dataset, model, optimizer, schedule, loss, training step and augmentation are named (looked
up in `datasets.DATASETS`, `models.MODELS`, `optim.OPTIMIZERS`, `optim.SCHEDULES`,
`losses.LOSSES`, `steps.TRAIN_STEPS`, `augment.AUGMENTS`) and all but the dataset given keyword
settings, as big_vision's configs do, so a whole config is JSON: recorded beside each
run, in the JSON report and in a checkpoint, which rebuilds the run from that record alone.
"""

import dataclasses
import json
import math
from typing import Any


class ConfigError(ValueError):
    """A setting that cannot run as given; the message says what to change."""


DTYPES = ("float32", "bfloat16")
MAX_SEED = 2**31 - 1  # Seeds reach the devices as int32; a larger one would wrap or overflow.


@dataclasses.dataclass(frozen=True)
class Config:
    """An experiment's settings, one value each: a sweep is `KEY=A,B` overrides, never a config.
    Settings dicts give only what differs from the registered defaults; `tutorial` holds the
    fields that `--tutorial` replaces to get the tutorial's exact setting (raw pixels, binary
    cross-entropy, its optimizer and rate). Dicts are never mutated.
    """

    name: str
    model_name: str
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    optimizer_name: str = "adam"
    optimizer: dict[str, Any] = dataclasses.field(default_factory=dict)
    schedule_name: str = "constant"
    schedule: dict[str, Any] = dataclasses.field(default_factory=dict)
    lr: float = 0.001  # the peak learning rate, which the schedule scales
    seed: int = 0  # initialisation and dropout
    data_seed: int = 0  # the order of the batches, the same for every member
    val_split: int = 0  # training examples held out for validation (`holdout`); 0: none
    epochs: int | None = None
    steps: int | None = None  # total batches; set instead of `epochs`
    loss_name: str = "categorical"
    loss: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: list[str] = dataclasses.field(default_factory=list)  # optional ones to compute
    raw_pixels: bool = False
    batch_size: int = 100
    dtype: str = "float32"
    tutorial: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "mnist"  # a name registered in `datasets.DATASETS`
    train_step_name: str = "standard"  # the step, registered in `steps.TRAIN_STEPS`
    train_step: dict[str, Any] = dataclasses.field(default_factory=dict)
    augment_name: str = "none"  # the training batches' augmentation, in `augment.AUGMENTS`
    augment: dict[str, Any] = dataclasses.field(default_factory=dict)
    init_from: str | None = None  # a checkpoint dir whose parameters start training (`init_from`)
    init_from_member: int | None = None  # its member to start from (key `init_from.member`)

    def tutorial_setting(self) -> "Config":
        return dataclasses.replace(
            self, loss_name="binary", loss={}, raw_pixels=True, **self.tutorial
        )

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "Config":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in record.items() if k in fields}
        for old, new in (("learning_rates", "lr"), ("seeds", "seed")):
            if old in record:  # a record written before sweeps left the config: one value
                (values[new],) = record[old]
        return cls(**values)


INIT_FROM_KEYS = {"init_from": "init_from", "init_from.member": "init_from_member"}  # key -> field


def coerce_init_from(key: str, value) -> Any:
    """An override's value for `init_from` (a path as typed; a number as its text) or
    `init_from.member` (a whole number from 0); null clears either."""
    if value is None:
        return None
    if key == "init_from":
        if isinstance(value, bool | list):
            raise ConfigError(f"init_from takes a checkpoint dir, got {value!r}")
        return str(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"init_from.member takes a whole number from 0, got {value!r}")
    return value


def check(config: Config) -> None:
    """Refuses a config whose top-level fields cannot run, naming the field and the fix."""
    if (config.epochs is None) == (config.steps is None):
        raise ConfigError(f"{config.name}: give epochs or steps, exactly one")
    for field in ("epochs", "steps", "batch_size"):
        value = getattr(config, field)
        if value is not None and not (_is_int(value) and value >= 1):
            raise ConfigError(f"{field} takes a whole number of at least 1, got {value!r}")
    if not (_is_number(config.lr) and math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"lr takes a positive number, got {config.lr!r}")
    for field, value in [("data_seed", config.data_seed), ("seed", config.seed)]:
        if not (_is_int(value) and 0 <= value <= MAX_SEED):
            raise ConfigError(f"{field} takes a whole number from 0 to {MAX_SEED}, got {value!r}")
    if not (_is_int(config.val_split) and config.val_split >= 0):
        raise ConfigError(f"val_split takes a whole number of at least 0, got {config.val_split!r}")
    if not all(isinstance(name, str) for name in config.metrics):
        raise ConfigError(f"metrics takes a list of names, got {config.metrics!r}")
    if config.dtype not in DTYPES:
        raise ConfigError(f"dtype takes one of {', '.join(DTYPES)}, got {config.dtype!r}")
    if not isinstance(config.dataset, str):
        raise ConfigError(f"dataset takes a registered name, got {config.dataset!r}")
    if not isinstance(config.raw_pixels, bool):
        raise ConfigError(f"raw_pixels takes true or false, got {config.raw_pixels!r}")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
