"""The one config type every experiment fills in."""

import dataclasses
from typing import Any

import flax.linen as nn

from mnist_jax import models


@dataclasses.dataclass(frozen=True)
class Config:
    """An experiment's settings. `tutorial` holds the fields that `--tutorial` replaces to get
    the tutorial's exact setting (raw pixels, binary cross-entropy, its optimizer and rate)."""

    name: str
    model: nn.Module
    optimizer: str
    learning_rates: tuple[float, ...]
    epochs: int | None = None
    steps: int | None = None  # total batches; set instead of `epochs`
    schedule: str = "constant"
    loss: str = "categorical"
    raw_pixels: bool = False
    batch_size: int = 100
    seeds: tuple[int, ...] = (0,)
    dtype: str = "float32"
    tutorial: dict[str, Any] = dataclasses.field(default_factory=dict)

    def tutorial_setting(self) -> "Config":
        return dataclasses.replace(self, loss="binary", raw_pixels=True, **self.tutorial)

    def describe(self) -> dict[str, Any]:
        """The config as JSON-ready values, the model as `models.describe` names it."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["model"] = models.describe(self.model)
        fields["learning_rates"] = list(self.learning_rates)
        fields["seeds"] = list(self.seeds)
        return fields


class ConfigError(ValueError):
    """A setting that cannot run as given; the message says what to change."""
