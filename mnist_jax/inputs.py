"""A dataset's splits as model inputs, loaded once per command and placed on each mesh that
trains on them."""

import dataclasses

import jax
import numpy as np

from mnist_jax import data, datasets, devices, holdout
from mnist_jax.config import Config, ConfigError

Arrays = tuple[np.ndarray, np.ndarray]  # images (N, H, W, C) float32, one-hot labels (N, K)


@dataclasses.dataclass(frozen=True)
class Source:
    """What decides the arrays a member trains and is evaluated on."""

    dataset: str
    raw_pixels: bool
    val_split: int

    @classmethod
    def of(cls, config: Config) -> "Source":
        return cls(config.dataset, config.raw_pixels, config.val_split)


@dataclasses.dataclass(frozen=True)
class Splits:
    train: Arrays
    validation: Arrays | None  # held out of the training set (`holdout`); None without one
    test: Arrays


def load(data_dir: str | None, source: Source) -> Splits:
    """The splits of `source` as model inputs: images scaled (or raw pixels), labels one-hot."""
    name = source.dataset
    num_classes = datasets.get(name).num_classes
    splits = []
    for split in ("train", "test"):
        images, labels = datasets.load(name, split, data_dir=data_dir)
        if source.raw_pixels and images.dtype != np.uint8:
            raise ConfigError(
                f"raw_pixels=true: dataset {name}'s images are {images.dtype} values, not pixels"
                " to leave unscaled; leave raw_pixels out"
            )
        splits.append(
            (data.to_inputs(images, source.raw_pixels), data.one_hot(labels, num_classes))
        )
    if source.val_split >= len(splits[0][0]):
        raise ConfigError(
            f"val_split={source.val_split} holds out every one of the {len(splits[0][0])} "
            f"training examples of {name}; hold out fewer"
        )
    train_xy, validation = holdout.split(splits[0], source.val_split)
    return Splits(train_xy, validation, splits[1])


def validation_record(splits: Splits) -> dict | None:
    """The validation split as the JSON report records it; None without one."""
    if splits.validation is None:
        return None
    total = len(splits.train[0]) + len(splits.validation[0])
    return holdout.record(total, len(splits.validation[0]))


class Placed:
    """The splits on the devices of each mesh that asks, each placed once."""

    def __init__(self, loaded: dict[Source, Splits]):
        self.loaded = loaded
        self._placed: dict = {}

    def on(self, mesh: jax.sharding.Mesh, source: Source) -> list:
        """`[train, validation or None, test]` on `mesh`."""
        key = (tuple(mesh.shape.items()), source)
        if key not in self._placed:
            splits = self.loaded[source]
            self._placed[key] = [
                None if xy is None else devices.to_devices(mesh, *xy)
                for xy in (splits.train, splits.validation, splits.test)
            ]
        return self._placed[key]
