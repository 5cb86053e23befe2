"""The tfds datasets as arrays: found, prepared when needed, decoded once and cached.

A dataset (e.g. `fashion_mnist` 3.0.1) is stored as tfds' `array_record` files and read with
`tfds.data_source`. `load` finds it, in this order:

  a. prepared in the tfds data dir (`data_dir`, else `$TFDS_DATA_DIR`, else ~/tensorflow_datasets);
  b. its published files in `<data_dir>/downloads/manual/`, imported automatically;
  c. tfds' download from the authors' site, when it answers within NETWORK_TIMEOUT_S.

A data dir that was named (argument or $TFDS_DATA_DIR) must exist: a mistyped one is an error,
never created. Without b or c, nothing is created or announced. A cached split is served without
importing tensorflow_datasets (a second of imports): its files are found by their names, its
size read from `dataset_info.json`. Everything that needs tfds is in `tfds_builder`, imported
when needed.
"""

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np

from mnist_jax.datasets import cache, files, messages
from mnist_jax.datasets.catalog import TfdsSpec
from mnist_jax.datasets.errors import DataFileError, DataNotFoundError


def load(spec: TfdsSpec, split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split in memory: images uint8 (N, 28, 28, 1), labels int32 (N,), in tfds' order.

    Prepares the dataset first when needed (sources b and c above); raises DataNotFoundError,
    naming every way to provide it, when there is no way, and creates nothing then. Works under
    `tfds.testing.mock_data` (its random examples, neither files nor the cache).
    """
    root = resolve_data_dir(data_dir)
    if _tfds_is_mocked():
        return _tfds().read_mock_split(spec, root, split)
    if (cached := _read_cache_by_file_names(spec, split, root)) is not None:
        return cached
    tfds_builder = _tfds()
    if not spec.is_prepared(root):
        _check_obtainable(spec, data_dir)  # Before tfds prints "Downloading..." or creates folders.
        tfds_builder.download_and_prepare(spec, root)
    raw = tfds_builder.RawSplit(spec, root, split)
    try:
        key = cache.key(split, raw.files)
    except OSError as err:
        path = Path(err.filename) if err.filename else raw.files[0]
        raise DataFileError(messages.damaged(spec, [path], raw.data_dir_root, err)) from err
    folder, expected = spec.folder(root), _expected(spec, raw.num_examples)
    if (cached := cache.read(folder, key, expected)) is not None:
        return cached
    images, labels = raw.decode()
    if not expected.holds(images, labels):
        problem = ValueError(f"{len(images)} examples, labels {labels.min()}..{labels.max()}")
        raise DataFileError(messages.damaged(spec, raw.files, raw.data_dir_root, problem))
    cache.write(folder, key, images, labels, spec.title)
    return images, labels


def prepare(
    spec: TfdsSpec,
    source_dir: str | os.PathLike,
    data_dir: str | None = None,
    checksums: dict[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Imports the dataset's published files in `source_dir` into a tfds data dir; returns the
    dataset's folder.

    Every file is checked (`checksums`, by default tfds' registered ones) before anything is
    written. The dataset is built in a temporary folder inside `data_dir` and renamed into
    place, so a failed or interrupted prepare leaves no partial dataset. A no-op when the dataset
    is already there, unless `force`: then a damaged one is replaced by a new build (the old goes
    only once the new one is complete).
    """
    root = Path(resolve_data_dir(data_dir))
    if spec.is_prepared(root) and not force:
        return spec.folder(root)
    found = files.find(spec.published, Path(source_dir), True, spec.name)
    tfds_builder = _tfds()
    checksums = checksums or tfds_builder.checksums(spec)
    splits = files.read_splits(spec.published, found, checksums, spec.image_shape[:2])
    tfds_builder.build(spec, splits, root)
    return spec.folder(root)


def split_sizes(spec: TfdsSpec, data_dir: str) -> dict[str, int]:
    """{split: number of examples} of the prepared dataset."""
    return _tfds().split_sizes(spec, data_dir)


def resolve_data_dir(data_dir: str | None) -> str:
    """`data_dir`, else $TFDS_DATA_DIR, else tfds' default ~/tensorflow_datasets."""
    return os.path.expanduser(
        data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    )


def _tfds():
    """`tfds_builder`, imported on first use (it imports tensorflow_datasets)."""
    from mnist_jax.datasets import tfds_builder

    return tfds_builder


def _expected(spec: TfdsSpec, num_examples: int) -> cache.Expected:
    return cache.Expected(num_examples, spec.image_shape, len(spec.class_names))


def _tfds_is_mocked() -> bool:
    """Whether `tfds.testing.mock_data` has replaced tfds' preparing and reading: its fake
    examples must come through, neither real files nor the cache. It patches two methods of
    `DatasetBuilder` with functions of its own, told apart by their names; it cannot be active
    unless tfds is imported, and this imports nothing."""
    module = sys.modules.get("tensorflow_datasets.core.dataset_builder")
    if module is None:
        return False
    return any(
        getattr(getattr(module.DatasetBuilder, name), "__qualname__", None)
        != f"DatasetBuilder.{name}"
        for name in ("download_and_prepare", "as_data_source")
    )


def _read_cache_by_file_names(spec: TfdsSpec, split: str, data_dir: str):
    """The cached arrays of a prepared split, its array_record files found by their names
    (`<name>-<split>.array_record-<shard>-of-<shards>`, as tfds lists them) and its size read
    from `dataset_info.json`, without tfds; None for anything else (not prepared, another shard
    left over, an unreadable file, no entry): the full way through tfds then decides, with its
    errors."""
    folder = spec.folder(data_dir)
    shards = sorted(folder.glob(f"{spec.tfds_name}-{split}.array_record-*-of-*"))
    try:
        info = json.loads((folder / "dataset_info.json").read_text())
        (lengths,) = [s["shardLengths"] for s in info["splits"] if s["name"] == split]
        num_examples = sum(int(n) for n in lengths)
        key = cache.key(split, shards)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not shards:
        return None
    return cache.read(folder, key, _expected(spec, num_examples))


# --- When the dataset is not prepared -------------------------------------------------------------


def _check_obtainable(spec: TfdsSpec, data_dir: str | None) -> None:
    """Raises DataNotFoundError, having created and printed nothing, unless the dataset can be
    prepared: from files in the manual folder, else downloaded by tfds into an existing data dir
    (~/tensorflow_datasets, when the user named none, may be new). A named data dir that holds
    the published files, or lies inside a data dir holding the dataset, is told what to type."""
    named = data_dir or os.environ.get("TFDS_DATA_DIR")
    root = Path(resolve_data_dir(data_dir))
    if named:
        _check_not_misplaced(spec, named, root)
    manual_dir = root / "downloads" / "manual"
    if files.find(spec.published, manual_dir, False, spec.name):  # Some there: all must be.
        files.find(spec.published, manual_dir, True, spec.name)
        return
    missing = not root.is_dir() and bool(named)
    error = network_error(spec.published.probe_url)
    if missing or error is not None:
        given = named if named else root
        raise DataNotFoundError(messages.not_found(spec, given, error, missing, bool(named)))


def _check_not_misplaced(spec: TfdsSpec, given: str, root: Path) -> None:
    """One line when the data dir named holds the published files themselves, or lies inside
    a tfds data dir that holds the dataset (`~/tensorflow_datasets/mnist`)."""
    if root.is_dir() and files.find(spec.published, root, False, spec.name):
        raise DataNotFoundError(messages.holds_the_files(spec, given))
    for parent in list(root.absolute().parents)[:3]:
        if spec.is_prepared(parent):
            raise DataNotFoundError(messages.inside_a_data_dir(spec, given, parent))


def network_error(url: str) -> str | None:
    """None when `url` answers a HEAD request within NETWORK_TIMEOUT_S, else why not.

    urllib honours HTTP(S)_PROXY like tfds' downloader (requests). The request runs in a daemon
    thread so that the deadline also bounds DNS resolution, which socket timeouts do not.
    """
    import urllib.request  # Here: 25 ms of imports a load served from the cache does without.

    timeout = messages.NETWORK_TIMEOUT_S
    result = {"error": "no answer"}

    def probe():
        request = urllib.request.Request(url, method="HEAD")
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
            result["error"] = None
        except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors.
            result["error"] = str(err)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return result["error"]
