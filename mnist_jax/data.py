"""Data in, model inputs out: the `prepare` command, the preprocessing, MNIST's shortcuts.

    python -m mnist_jax.data prepare SOURCE_DIR [--dataset NAME] [--data-dir DIR] [--force]

imports a dataset's published files (MNIST's four IDX files by default) into a tfds data dir,
offline, each checked against its registered SHA-256. The datasets themselves, their registry,
finding, preparing and caching are in `mnist_jax.datasets`; this module uses it and nothing
there imports this one.
"""

import argparse
import errno
import os
import shlex
import sys
import time
from pathlib import Path
from typing import NoReturn

import numpy as np

from mnist_jax import commands
from mnist_jax.datasets import DataError, catalog, loading

MNIST = catalog.SPECS["mnist"]
MNIST_SHA256 = catalog.MNIST_SHA256


def load_mnist(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's split `split`: images uint8 (N, 28, 28, 1), labels int32 (N,), in tfds' order."""
    return loading.load(MNIST, split, data_dir)


def prepare(source_dir, data_dir=None, checksums=None, force=False) -> Path:
    """Imports MNIST's four IDX files in `source_dir`; see `loading.prepare`."""
    return loading.prepare(MNIST, source_dir, data_dir, checksums, force)


def is_prepared(data_dir: str | None = None, dataset: str = "mnist") -> bool:
    """Whether `dataset` is prepared in the data dir a load would use (so that loading it needs
    to write nothing there: a read-only data dir then works, the cache goes elsewhere)."""
    return catalog.SPECS[dataset].is_prepared(loading.resolve_data_dir(data_dir))


# --- Preprocessing -------------------------------------------------------------------------------


def flatten(images_NxHxWxC: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, H*W*C), as the tutorial's dense layers take them."""
    return images_NxHxWxC.reshape(len(images_NxHxWxC), -1)


SCALED = np.arange(256, dtype=np.float32) / 255.0  # each pixel value's float32, once


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels in [0, 255] -> float32 in [0, 1], by table: one pass over the images, the
    same values as `images.astype(np.float32) / 255`."""
    return SCALED[images]


def to_inputs(images_NxHxWxC: np.ndarray, raw_pixels: bool = False) -> np.ndarray:
    """Model inputs float32 (N, H, W, C), images still (a model flattens them if it wants):
    uint8 pixels scaled to [0, 1], or raw [0, 255] as the tutorial has them (its `/255` is
    commented out); float images (a dataset of one's own) as they are."""
    if images_NxHxWxC.dtype != np.uint8:
        return images_NxHxWxC.astype(np.float32, copy=False)
    return images_NxHxWxC.astype(np.float32) if raw_pixels else scale(images_NxHxWxC)


def one_hot(labels_N: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels (N,) -> float32 one-hot (N, num_classes)."""
    return np.eye(num_classes, dtype=np.float32)[labels_N]


# --- Command line --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Errors in one line, exit status 2: the usage block argparse prints first buries them."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m mnist_jax.data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser(
        "prepare", help="import a dataset's published files into a tfds data dir"
    )
    prep.add_argument("source_dir", help="the folder holding the dataset's published files")
    prep.add_argument(
        "--dataset",
        default="mnist",
        choices=sorted(catalog.SPECS),
        help="which dataset the files are (default mnist)",
    )
    prep.add_argument(
        "--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR, else ~/tensorflow_datasets)"
    )
    prep.add_argument(
        "--force", action="store_true", help="rebuild the dataset even if prepared (a damaged one)"
    )
    args = parser.parse_args(argv)
    spec = catalog.SPECS[args.dataset]
    if problem := _source_problem(spec, args.source_dir):
        parser.error(problem)
    start = time.perf_counter()
    data_dir = loading.resolve_data_dir(args.data_dir)
    if spec.is_prepared(data_dir) and not args.force:
        print(
            f"{spec.name} is already prepared in {spec.folder(data_dir)}; nothing to do"
            f" (--force rebuilds it). {next_step(spec.name, data_dir)}"
        )
        return 0
    if problem := _data_dir_problem(data_dir):
        parser.error(f"--data-dir {args.data_dir or data_dir}: {problem}")
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    try:
        target = loading.prepare(spec, args.source_dir, data_dir, force=args.force)
    except DataError as err:
        parser.error(str(err))
    except OSError as err:
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)  # a fault; the rest, bad input
        fix = "free some space or choose" if full else "choose"
        parser.exit(
            1 if full else 2,
            f"{parser.prog}: error: cannot write {err.filename or data_dir}:"
            f" {err.strerror or err}; nothing was prepared: {fix} another --data-dir\n",
        )
    sizes = loading.split_sizes(spec, data_dir)
    counts = ", ".join(f"{name} {size}" for name, size in sizes.items())
    seconds = time.perf_counter() - start
    print(f"Prepared {spec.name} ({counts}) from {args.source_dir} in {target} in {seconds:.1f} s.")
    print(next_step(spec.name, data_dir))
    return 0


def next_step(name: str, data_dir: str) -> str:
    """What to type next: an experiment on the dataset, with `--data-dir` unless the data dir
    is where every command looks by itself ($TFDS_DATA_DIR, else ~/tensorflow_datasets)."""
    found = os.path.abspath(data_dir) == os.path.abspath(loading.resolve_data_dir(None))
    flags = [] if found else ["--data-dir", data_dir]
    flags += [] if name == "mnist" else [f"dataset={name}"]
    command = commands.python_module("experiments.softmax", *flags)
    if found:
        return f"Every command finds it there by itself; next, train on it: {command}"
    return (
        f"Pass --data-dir {shlex.quote(data_dir)} to every command (experiments, evaluate, the"
        f" report), or set TFDS_DATA_DIR={shlex.quote(data_dir)}; next, train on it: {command}"
    )


def _source_problem(spec: catalog.TfdsSpec, source_dir: str) -> str | None:
    """Why `source_dir` cannot hold the files, checked before anything else."""
    wanted = ", ".join(spec.published.source_names())
    if os.path.isfile(source_dir):
        return f"{source_dir} is a file; give the folder that holds {spec.name}'s {wanted}"
    if not os.path.isdir(source_dir):
        return f"{source_dir}: no such folder; give the folder that holds {spec.name}'s {wanted}"
    return None


def _data_dir_problem(data_dir: str) -> str | None:
    """Why a dataset cannot be written into `data_dir` (a file, read-only), or None."""
    existing = os.path.abspath(data_dir)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


if __name__ == "__main__":
    sys.exit(main())
