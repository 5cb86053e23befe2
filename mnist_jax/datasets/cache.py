"""The cache of decoded splits: decoding a split (protos and PNGs) takes seconds, reading its
arrays back a fraction of one.

A split's arrays are kept as `mnist_jax-cache-<key>.npz` inside the prepared dataset's folder
(removed with it), or in `$XDG_CACHE_HOME/mnist_jax/` (~/.cache) when that folder is read-only.
The key hashes the cache version, the split and the content of its array_record files, so an
entry is never served for changed files. An entry is served only when it holds what the split
holds (its number of examples, images of the dataset's shape, labels among its classes): a
damaged or wrong one is decoded anew and replaced; an unwritable place is only skipped.
"""

import dataclasses
import functools
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

# Bump when the layout or the decoding changes, so that no older file matches.
CACHE_VERSION = 1
CACHE_PREFIX = "mnist_jax-cache-"


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a split's arrays must be: `num_examples` images uint8 of `image_shape`, int32 labels
    in [0, num_classes)."""

    num_examples: int
    image_shape: tuple[int, ...]
    num_classes: int

    def holds(self, images: np.ndarray, labels: np.ndarray) -> bool:
        return (
            images.dtype == np.uint8
            and labels.dtype == np.int32
            and images.shape == (self.num_examples, *self.image_shape)
            and labels.shape == (self.num_examples,)
            and (self.num_examples == 0 or 0 <= labels.min() <= labels.max() < self.num_classes)
        )


def key(split: str, files: list[Path]) -> str:
    """Names the decoded arrays by what they came from: the cache format, the split and the
    content (BLAKE2b) of its array_record files. Raises OSError for an unreadable file."""
    digest = hashlib.blake2b(f"{CACHE_VERSION} {split}".encode(), digest_size=16)
    for path in files:
        with open(path, "rb") as f:
            digest.update(path.name.encode() + hashlib.file_digest(f, "blake2b").digest())
    return digest.hexdigest()


def folders(dataset_folder: Path) -> list[Path]:
    """Where the cache may live, in order: inside the dataset's folder (it goes when the dataset
    goes), else the user's cache dir (a read-only data dir)."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return [Path(dataset_folder), user_cache / "mnist_jax"]


def read(dataset_folder: Path, key: str, expected: Expected):
    """The cached (images, labels), or None when there are none that hold what `expected`
    says: a damaged, truncated, unreadable or wrong file is passed over (npz checks each member's
    CRC-32) and the split is decoded again."""
    for folder in folders(dataset_folder):
        try:
            with np.load(folder / f"{CACHE_PREFIX}{key}.npz") as npz:
                images, labels = npz["images"], npz["labels"]
        except Exception:  # BadZipFile, OSError, KeyError...: any only means decoding again.
            continue
        if expected.holds(images, labels):
            return images, labels
    return None


def write(dataset_folder: Path, key: str, images: np.ndarray, labels: np.ndarray, what: str):
    """Saves the arrays in the first writable cache folder; when none is, says so once and
    carries on (the load has its arrays: a cache only makes the next one fast)."""
    errors = []
    for folder in folders(dataset_folder):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _save_atomically(folder / f"{CACHE_PREFIX}{key}.npz", images=images, labels=labels)
            return
        except OSError as err:
            errors.append(f"{folder}: {err.strerror or err}")
    _note_once(f"note: mnist_jax: no cache of decoded {what} written ({'; '.join(errors)})")


def _save_atomically(path: Path, **arrays: np.ndarray) -> None:
    """`np.savez` to a temporary file beside `path`, renamed to it when complete: loads started
    together each see a whole file or none, never half of one."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        try:
            np.savez(f, **arrays)
            f.close()
            os.chmod(f.name, 0o644)  # Public data; mkstemp made it private.
            os.replace(f.name, path)
        except BaseException:
            os.unlink(f.name)
            raise


@functools.cache
def _note_once(message: str) -> None:
    """Prints a note to stderr, once a process."""
    print(message, file=sys.stderr)
