"""What the processes read: MNIST as the peers' .npz and as plain_jax_tbx's gzip IDX files."""

import dataclasses
import gzip
import os

import numpy as np

from experiments.benchmark.variants import KIND_PEER, KIND_TBX

IDX_FILES = {  # as plain_jax_tbx reads them
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What the processes read, and the compilation cache the project's processes share."""

    data_dir: str | None = None  # the tfds data dir, as the experiments take it
    npz: str | None = None  # the peers' .npz
    idx_dir: str | None = None  # the four gzip IDX files, for plain_jax_tbx
    compile_cache: str | None = None  # $MNIST_JAX_COMPILE_CACHE for every process


def load_split(split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    from mnist_jax import data, datasets

    try:
        return data.load_mnist(split, data_dir=data_dir)
    except datasets.DataError as error:
        raise SystemExit(f"benchmark: {error}") from error


def write_npz(path: str, data_dir: str | None) -> None:
    """MNIST as the peers read it: float32 [N, 784] pixels in [0, 1], int32 labels."""
    from mnist_jax import data

    arrays = {}
    for split in ("train", "test"):
        images, labels = load_split(split, data_dir)
        arrays[f"x_{split}"] = data.flatten(data.to_inputs(images))  # as the project feeds it
        arrays[f"y_{split}"] = np.asarray(labels, np.int32)
    np.savez(path, **arrays)


def write_idx_file(path: str, array: np.ndarray) -> None:
    """One gzip IDX file of uint8: magic 0 0 8 ndim, one big-endian int32 per dimension, data."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def write_idx(folder: str, data_dir: str | None) -> None:
    """The prepared dataset as the four gzip IDX files plain_jax_tbx reads (same pixels)."""
    os.makedirs(folder, exist_ok=True)
    for split, (images_file, labels_file) in IDX_FILES.items():
        images, labels = load_split(split, data_dir)
        write_idx_file(os.path.join(folder, images_file), images.reshape(len(images), 28, 28))
        write_idx_file(os.path.join(folder, labels_file), np.asarray(labels, np.uint8))


def train_examples(data_dir: str | None) -> int:
    """Training examples in an epoch of batches of 100 (MNIST's 60,000)."""
    return len(load_split("train", data_dir)[1]) // 100 * 100


def prepare(variants, data_dir: str | None, mnist: str | None, tmp: str) -> Inputs:
    """Writes what the chosen variants read into `tmp` (the IDX files only unless `mnist` names
    the originals); the driver's own load also fills the decoded cache."""
    kinds = {v.kind for v in variants}
    npz = idx_dir = None
    if KIND_PEER in kinds:
        npz = os.path.join(tmp, "mnist.npz")
        write_npz(npz, data_dir)
    if KIND_TBX in kinds:
        idx_dir = mnist
        if idx_dir is None:
            idx_dir = os.path.join(tmp, "idx")
            write_idx(idx_dir, data_dir)
    return Inputs(data_dir, npz, idx_dir, os.path.join(tmp, "jax-compile-cache"))
