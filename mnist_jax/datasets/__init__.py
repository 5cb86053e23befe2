"""Datasets by name, as a config names them (`dataset=fashion_mnist`): `DATASETS`, a registry
like `models.MODELS`.

Each entry is a `Dataset`: what the model needs (one image's shape, the class names) and a
`read(split, data_dir)` giving a split's arrays. Registered here: `mnist`, `fashion_mnist`,
`kmnist` and `emnist/digits`, tfds' datasets read without TensorFlow (`loading`). A dataset of
one's own is registered from any module, from numpy arrays:

    from mnist_jax.datasets import DATASETS, from_arrays
    DATASETS.register("blobs", from_arrays(train=(x_train, y_train), test=(x_test, y_test),
                                           class_names=["a", "b"]))

or as a function returning a `Dataset`, called when a run uses it. A checkpoint records the
module that registered its dataset, so `python -m mnist_jax.evaluate` imports it again.

The modules of this package import one way: `loading` (finding, preparing, caching tfds'
datasets) uses `catalog` (what each is), `files` (their published files and checksums),
`cache` (decoded splits) and, only when needed, `tfds_builder` (everything needing tfds);
`messages` says what to type; nothing here imports `mnist_jax.data`, the command line.
"""

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from mnist_jax.config import ConfigError
from mnist_jax.datasets import catalog, loading
from mnist_jax.datasets.errors import DataError, DataFileError, DataNotFoundError
from mnist_jax.registry import Registry

__all__ = [
    "DATASETS",
    "DataError",
    "DataFileError",
    "DataNotFoundError",
    "Dataset",
    "check_split",
    "from_arrays",
    "get",
    "load",
]

DEFAULT = "mnist"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset as a run needs it.

    `read(split, data_dir)` gives split "train" or "test" as images (N, *image_shape), uint8
    pixels 0..255 (scaled to [0, 1] for the model, or raw with `raw_pixels`) or float32 (taken
    as they are), and integer labels (N,) in [0, len(class_names)).
    """

    image_shape: tuple[int, ...]  # one example's (H, W, C)
    class_names: tuple[str, ...]
    read: Callable[[str, str | None], tuple[np.ndarray, np.ndarray]]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


DATASETS = Registry("dataset")


def get(name: str) -> Dataset:
    """The registered dataset `name` (a ConfigError naming the nearest for an unknown one)."""
    return _made(DATASETS.get(name), name)


@functools.cache
def _made(entry, name: str) -> Dataset:
    """A registered Dataset, or what a registered function returns (made once a process)."""
    dataset = entry if isinstance(entry, Dataset) else entry()
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"dataset {name!r} was registered with something that is no Dataset")
    return dataset


def load(name: str, split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split `split` of dataset `name`, checked against its description: images (N, H, W, C)
    uint8 or float32, labels int32 (N,) in [0, num_classes). A DataError says what is wrong."""
    images, labels = get(name).read(split, data_dir)
    images, labels = np.asarray(images), np.asarray(labels)
    check_split(name, split, images, labels)
    return images, labels.astype(np.int32, copy=False)


def check_split(name: str, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Refuses a split that cannot be trained or evaluated on, in one line naming what is wrong
    (a DataError): no examples, images of another type or shape than the dataset's, non-finite
    pixels, labels not one integer per image in [0, num_classes). Called on every `load`, so
    before anything of a run is written."""
    dataset, where = get(name), f"dataset {name}, split {split}"
    if images.dtype not in (np.uint8, np.float32) or images.shape[1:] != dataset.image_shape:
        raise DataError(
            f"{where}: images are {images.dtype} {images.shape}, expected uint8 or float32"
            f" (N, {', '.join(map(str, dataset.image_shape))})"
        )
    if not len(images):
        raise DataError(f"{where}: no examples; a split needs at least one to train or test on")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels are {labels.dtype}, expected integers")
    if labels.shape != images.shape[:1]:
        raise DataError(
            f"{where}: labels of shape {labels.shape} for {len(images)} images; expected one"
            f" label per image, shape ({len(images)},)"
        )
    if images.dtype == np.float32 and not (finite := np.isfinite(images)).all():
        bad_N = ~finite.reshape(len(images), -1).all(axis=1)
        raise DataError(
            f"{where}: {bad_N.sum()} of {len(images)} images hold NaN or infinite values (the"
            f" first is example {bad_N.argmax()}); every pixel must be a finite number"
        )
    if not 0 <= labels.min() <= labels.max() < dataset.num_classes:
        raise DataError(
            f"{where}: labels from {labels.min()} to {labels.max()}, expected 0 to"
            f" {dataset.num_classes - 1} ({dataset.num_classes} classes)"
        )


def from_arrays(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names,
) -> Dataset:
    """A dataset held in memory: (images, labels) per split, images (N, H, W, C) or (N, H, W)
    (one channel), uint8 pixels or float32 values; labels integers in [0, len(class_names))."""
    splits = {}
    for split, (images, labels) in {"train": train, "test": test}.items():
        images = np.asarray(images)
        splits[split] = images[..., None] if images.ndim == 3 else images, np.asarray(labels)

    def read(split: str, data_dir: str | None):
        del data_dir  # in memory
        return splits[split]

    return Dataset(tuple(splits["train"][0].shape[1:]), tuple(map(str, class_names)), read)


def tfds_spec(name: str) -> catalog.TfdsSpec | None:
    """The tfds dataset behind `name`, or None for one registered from elsewhere."""
    return catalog.SPECS.get(name)


for _spec in catalog.SPECS.values():
    DATASETS.register(
        _spec.name,
        Dataset(_spec.image_shape, _spec.class_names, functools.partial(loading.load, _spec)),
    )
