"""What a group of members trains, fixed at compile time (`TrainSpec`), and how a config gives
it (`train_spec`).

Float hyperparameters are data, one value per member (`TrainState.hparams`), so members that
differ only in them share one compiled program; everything else is in the spec, which is
hashable and static in the program.
"""

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import optax

from mnist_jax import augment, datasets, losses, metrics, models, optim, steps, sweep
from mnist_jax.config import Config


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """The static part of a group of members. Settings are sorted (key, value) pairs of the
    non-float settings (lists as tuples); the float ones are data, keyed by `float_keys`."""

    model_name: str
    model_settings: tuple[tuple[str, Any], ...] = ()
    optimizer_name: str = "adam"
    optimizer_settings: tuple[tuple[str, Any], ...] = ()
    schedule_name: str = "constant"
    schedule_settings: tuple[tuple[str, Any], ...] = ()
    loss_name: str = "categorical"
    loss_settings: tuple[tuple[str, Any], ...] = ()
    float_keys: tuple[str, ...] = ("lr",)  # the keys of `TrainState.hparams`
    metric_names: tuple[str, ...] = metrics.active(())  # the registered metrics it computes
    batch_size: int = 100
    dtype: str = "float32"
    num_classes: int | None = None  # the dataset's, for a model that takes `num_classes`
    train_step_name: str = "standard"
    train_step_settings: tuple[tuple[str, Any], ...] = ()
    augment_name: str = "none"
    augment_settings: tuple[tuple[str, Any], ...] = ()
    pixel_max: float = 1.0  # the inputs' scale: 1 for scaled pixels, 255 for raw ones

    def model(self, hparams: dict[str, jax.Array]) -> nn.Module:
        """The model, its float settings from `hparams` (traced in a sweep)."""
        classes = {} if self.num_classes is None else {"num_classes": self.num_classes}
        settings = {**dict(self.model_settings), **self._floats("model", hparams)}
        return models.MODELS.get(self.model_name)(**settings, **classes, dtype=self.dtype)

    def tx(self, hparams: dict[str, jax.Array]) -> optax.GradientTransformation:
        settings = {**dict(self.optimizer_settings), **self._floats("optimizer", hparams)}
        return optim.make_optimizer(self.optimizer_name, settings)

    def loss(self, hparams: dict[str, jax.Array]):
        """`loss(logits_BxK, y_BxK, params)`, its float settings from `hparams`."""
        settings = {**dict(self.loss_settings), **self._floats("loss", hparams)}
        return losses.make_loss(self.loss_name, settings)

    def learning_rate(self, step: jax.Array, hparams: dict[str, jax.Array]) -> jax.Array:
        schedule = optim.SCHEDULES.get(self.schedule_name)
        settings = {**dict(self.schedule_settings), **self._floats("schedule", hparams)}
        return schedule(step, hparams["lr"], **settings)

    def train_step(self, hparams: dict[str, jax.Array]):
        """`step(spec, state, batch, key)`: the registered step with its settings."""
        settings = {**dict(self.train_step_settings), **self._floats("train_step", hparams)}
        return functools.partial(steps.TRAIN_STEPS.get(self.train_step_name), **settings)

    def augment(self, hparams: dict[str, jax.Array]):
        """`augment(key, x_BxHxWxC) -> x_BxHxWxC`, the registered augmentation with its settings."""
        settings = {**dict(self.augment_settings), **self._floats("augment", hparams)}
        return functools.partial(augment.AUGMENTS.get(self.augment_name), **settings)

    def _floats(self, kind: str, hparams: dict[str, jax.Array]) -> dict[str, Any]:
        """`kind`'s float settings, by setting name, from `hparams`: every one must be there (a
        config's values: `sweep.float_hparams`), never a stand-in."""
        keys = [k for k in self.float_keys if k.startswith(f"{kind}.")]
        return {k.partition(".")[2]: hparams[k] for k in keys}


def hashable(settings: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Non-float settings as sorted pairs, lists as tuples."""
    return tuple(
        (k, tuple(v) if isinstance(v, list) else v)
        for k, v in sorted(settings.items())
        if not isinstance(v, float)
    )


def train_spec(config: Config, group: Sequence[Config] = ()) -> TrainSpec:
    """The static part of a group's members (`config` the first, `group` them all; a config
    alone by default). Float hyperparameters are data, except the loss settings that every
    member shares: those are constants, so a term they zero is left out (`losses.is_zero`)."""
    floats = sweep.float_hparams(config)
    values = [sweep.float_hparams(c) for c in (config, *group)]
    shared = {k for k in floats if k.startswith("loss.") and len({v[k] for v in values}) == 1}
    loss = {k: v for k, v in config.loss.items() if f"loss.{k}" in shared}
    takes_classes = models.MODELS.takes(config.model_name, "num_classes")
    return TrainSpec(
        model_name=config.model_name,
        model_settings=hashable(config.model),
        optimizer_name=config.optimizer_name,
        optimizer_settings=hashable(config.optimizer),
        schedule_name=config.schedule_name,
        schedule_settings=hashable(config.schedule),
        loss_name=config.loss_name,
        loss_settings=hashable(config.loss) + tuple(sorted(loss.items())),
        float_keys=tuple(k for k in floats if k not in shared),
        metric_names=metrics.active(config.metrics),
        batch_size=config.batch_size,
        dtype=config.dtype,
        num_classes=datasets.get(config.dataset).num_classes if takes_classes else None,
        train_step_name=config.train_step_name,
        train_step_settings=hashable(config.train_step),
        augment_name=config.augment_name,
        augment_settings=hashable(config.augment),
        pixel_max=255.0 if config.raw_pixels else 1.0,
    )
