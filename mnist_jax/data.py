"""MNIST through tensorflow-datasets without TensorFlow: prepare, load, preprocess.

The data is tfds' official `mnist` dataset (3.0.1), stored as `array_record` and read with
`tfds.data_source`. `load_mnist` finds it, in this order:

  a. prepared in the tfds data dir (`data_dir`, else `$TFDS_DATA_DIR`, else ~/tensorflow_datasets);
  b. the four IDX files (gzip or not) in `<data_dir>/downloads/manual/`, imported automatically;
  c. tfds' download from the MNIST mirror, when the mirror answers within NETWORK_TIMEOUT_S.

A data dir that was named (argument or $TFDS_DATA_DIR) must exist: a mistyped one is an error,
never created. Without b or c, nothing is created or announced.

Decoding a split (protos and PNGs) takes seconds, so the arrays are cached as
`mnist_jax-cache-<key>.npz` inside the dataset's folder `<data_dir>/mnist/3.0.1/` (removed with
it), or in `$XDG_CACHE_HOME/mnist_jax/` (~/.cache) when that folder is read-only. The key hashes
the cache version, the split and the content of its array_record files, so an entry is never
served for changed files; a damaged entry is decoded anew, an unwritable place only skipped.
A cached split is served without importing tensorflow_datasets (a second of imports): the files
are found by their names. Everything else (preparing, decoding, tfds' mock data) is in
`mnist_jax.mnist_tfds`, imported when needed. A damaged dataset file is a MnistFileError naming
it and the command that rebuilds it:

    python -m mnist_jax.data prepare SOURCE_DIR [--data-dir DIR] [--force]
"""

import argparse
import functools
import gzip
import hashlib
import os
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)

# SHA-256 of the canonical uncompressed IDX files (LeCun, Cortes and Burges).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# split -> (images file, labels file), uncompressed names.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# The mirror tfds downloads from (tfds' `MNIST.URL`, which a test checks).
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
# Where tfds' builder keeps the prepared dataset inside a data dir (a test checks it).
DATASET_PATH = ("mnist", "3.0.1")
# The no-network answer must come fast: tfds' own download retries for minutes before failing.
NETWORK_TIMEOUT_S = 5.0
# Decoded splits are cached as `<CACHE_PREFIX><key>.npz`; bump the version when the layout or the
# decoding changes, so that no older file matches.
CACHE_VERSION = 1
CACHE_PREFIX = "mnist_jax-cache-"


class MnistError(Exception):
    """MNIST cannot be read or prepared; the message says what to do."""


class MnistNotFoundError(MnistError):
    """MNIST is neither prepared nor obtainable from local files or the network."""


class MnistFileError(MnistError):
    """An MNIST file is present but wrong: bad checksum, truncated, not IDX."""


# --- Loading -------------------------------------------------------------------------------------


def load_mnist(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole split in memory: images uint8 (N, 28, 28, 1), labels int32 (N,), in tfds' order.

    Prepares the dataset first when needed (sources b and c of the module docstring); raises
    MnistNotFoundError, naming every way to provide MNIST, when there is no way, and creates
    nothing then. Serves the decoded arrays from the cache when it matches the files, without
    importing tensorflow_datasets. Works under `tfds.testing.mock_data` (pass `split=`
    explicitly), which replaces preparing and reading.
    """
    root = _resolve_data_dir(data_dir)
    if _tfds_is_mocked():
        return _tfds().read_mock_split(root, split)
    if (cached := _read_cache_by_file_names(split, root)) is not None:
        return cached
    mnist_tfds = _tfds()
    if not is_prepared(root):
        _check_obtainable(data_dir)  # Before tfds prints "Downloading..." or creates folders.
        mnist_tfds.download_and_prepare(root)
    raw = mnist_tfds.RawSplit(root, split)
    key = _cache_key(split, raw.files, raw.data_dir_root)
    folder = _dataset_folder(root)
    if (cached := _read_cache(folder, key)) is not None:
        return cached
    images, labels = raw.decode()
    _write_cache(folder, key, images, labels)
    return images, labels


def _tfds():
    """`mnist_jax.mnist_tfds`, imported on first use (it imports tensorflow_datasets)."""
    from mnist_jax import mnist_tfds

    return mnist_tfds


def _resolve_data_dir(data_dir: str | None) -> str:
    """`data_dir`, else $TFDS_DATA_DIR, else tfds' default ~/tensorflow_datasets."""
    return os.path.expanduser(
        data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    )


def _dataset_folder(data_dir: str | os.PathLike) -> Path:
    """The prepared dataset's folder in a data dir, `<data_dir>/mnist/3.0.1` (tfds'
    `builder.data_dir`)."""
    return Path(data_dir, *DATASET_PATH)


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


def _damaged_message(files: list[Path], data_dir: str, err: Exception) -> str:
    """One line: which file, what the reader said, and the command that rebuilds the dataset."""
    detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return (
        f"{', '.join(map(str, files))}: damaged, truncated or unreadable ({detail}). Rebuild the"
        f" dataset from the four MNIST IDX files: python -m mnist_jax.data prepare SOURCE_DIR"
        f" --data-dir {data_dir} --force"
    )


# --- Cache of decoded splits ---------------------------------------------------------------------


def _read_cache_by_file_names(split: str, data_dir: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays of a prepared split, its array_record files found by their names
    (`mnist-<split>.array_record-<shard>-of-<shards>`, as tfds lists them), without tfds; None
    for anything else (not prepared, another shard left over, an unreadable file, no entry): the
    full way through tfds then decides, with its errors."""
    folder = _dataset_folder(data_dir)
    files = sorted(folder.glob(f"mnist-{split}.array_record-*-of-*"))
    if not files or not (folder / "dataset_info.json").is_file():
        return None
    try:
        key = _cache_key(split, files, data_dir)
    except MnistFileError:
        return None
    return _read_cache(folder, key)


def _cache_key(split: str, files: list[Path], data_dir: str) -> str:
    """Names the decoded arrays by what they came from: the cache format, the split and the
    content (BLAKE2b) of its array_record files; a changed file never meets an old entry."""
    key = hashlib.blake2b(f"{CACHE_VERSION} {split}".encode(), digest_size=16)
    for path in files:
        try:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "blake2b").digest()
        except OSError as err:
            raise MnistFileError(_damaged_message([path], data_dir, err)) from err
        key.update(path.name.encode() + digest)
    return key.hexdigest()


def _cache_folders(dataset_folder: Path) -> list[Path]:
    """Where the cache may live, in order: inside the dataset's folder (it goes when the dataset
    goes), else the user's cache dir (a read-only data dir)."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return [Path(dataset_folder), user_cache / "mnist_jax"]


def _read_cache(dataset_folder: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when there are none: a damaged, truncated or unreadable cache
    file is passed over (npz checks each member's CRC-32) and the split is decoded again."""
    for folder in _cache_folders(dataset_folder):
        try:
            with np.load(folder / f"{CACHE_PREFIX}{key}.npz") as npz:
                images, labels = npz["images"], npz["labels"]
        except Exception:  # BadZipFile, OSError, KeyError...: any only means decoding again.
            continue
        expected = (np.uint8, np.int32, IMAGE_SHAPE, images.shape[:1])
        if (images.dtype, labels.dtype, images.shape[1:], labels.shape) == expected:
            return images, labels
    return None


def _write_cache(dataset_folder: Path, key: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Saves the arrays in the first writable cache folder; when none is, says so once and
    carries on (the load has its arrays: a cache only makes the next one fast)."""
    errors = []
    for folder in _cache_folders(dataset_folder):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _save_atomically(folder / f"{CACHE_PREFIX}{key}.npz", images=images, labels=labels)
            return
        except OSError as err:
            errors.append(f"{folder}: {err.strerror or err}")
    _note_once(f"note: mnist_jax: no cache of decoded MNIST written ({'; '.join(errors)})")


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


# --- Preparing -----------------------------------------------------------------------------------


def prepare(
    source_dir: str | os.PathLike,
    data_dir: str | None = None,
    checksums: dict[str, str] = MNIST_SHA256,
    force: bool = False,
) -> Path:
    """Imports the four IDX files in `source_dir` as tfds' `mnist`; returns the dataset's folder.

    Every file is checked (SHA-256 of the uncompressed bytes) before anything is written. The
    dataset is built in a temporary folder inside `data_dir` and renamed into place, so a failed or
    interrupted prepare leaves no partial dataset. A no-op when the dataset is already there,
    unless `force`: then a damaged one is replaced by a new build (the old goes only once the new
    one is complete).
    """
    data_dir = Path(_resolve_data_dir(data_dir))
    target = _dataset_folder(data_dir)
    if is_prepared(str(data_dir)) and not force:
        return target
    splits = _read_splits(_find_idx_files(Path(source_dir), required=True), checksums)
    _tfds().build(splits, data_dir)
    return target


def is_prepared(data_dir: str | None = None) -> bool:
    """Whether MNIST is prepared in the tfds data dir `load_mnist` would use, so that loading it
    needs to write nothing there (a read-only data dir then works: the cache goes elsewhere).

    Its folder only ever appears whole, by a rename; quieter than tfds' `builder.is_prepared()`,
    which logs a warning for a missing folder.
    """
    return (_dataset_folder(_resolve_data_dir(data_dir)) / "dataset_info.json").is_file()


def _find_idx_files(folder: Path, required: bool) -> dict[str, Path]:
    """{uncompressed name: path} of the IDX files in `folder`, each `NAME.gz` or `NAME`.

    With `required`, a missing file is an error naming it.
    """
    found = {}
    for name in MNIST_SHA256:
        path = next((p for p in (folder / f"{name}.gz", folder / name) if p.is_file()), None)
        if path is not None:
            found[name] = path
    missing = [f"{name}.gz" for name in MNIST_SHA256 if name not in found]
    if required and missing:
        raise MnistNotFoundError(
            f"{folder}: missing {', '.join(missing)} (each may also be uncompressed, without .gz)"
        )
    return found


def _read_splits(
    paths: dict[str, Path], checksums: dict[str, str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images uint8 (N, 28, 28), labels uint8 (N,))} from checked IDX files."""
    splits = {}
    for split, (images_name, labels_name) in SPLIT_FILES.items():
        images = _read_idx(paths[images_name], checksums[images_name])
        labels = _read_idx(paths[labels_name], checksums[labels_name])
        if images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
            raise MnistFileError(
                f"{paths[images_name]}, {paths[labels_name]}: shapes {images.shape} and"
                f" {labels.shape}, expected (N, 28, 28) and (N,)"
            )
        splits[split] = images, labels
    return splits


def _read_idx(path: Path, sha256: str) -> np.ndarray:
    """The uint8 array in an IDX file (gzip-compressed or not), after checking its SHA-256."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise MnistFileError(f"{path}: cannot be read or decompressed ({err}); truncated?") from err
    if (digest := hashlib.sha256(data).hexdigest()) != sha256:
        raise MnistFileError(
            f"{path}: SHA-256 of the uncompressed {len(data)} bytes is {digest}, expected"
            f" {sha256}: a wrong or truncated file. Get a fresh copy."
        )
    ndim = data[3] if len(data) >= 4 else 0
    header = 4 + 4 * ndim
    if data[:3] != b"\x00\x00\x08" or len(data) < header:  # 0x08: unsigned bytes.
        raise MnistFileError(f"{path}: not an IDX file of unsigned bytes")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    if len(data) != header + int(np.prod(shape)):
        raise MnistFileError(f"{path}: {len(data) - header} data bytes, header says shape {shape}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _check_obtainable(data_dir: str | None) -> None:
    """Raises MnistNotFoundError, having created and printed nothing, unless MNIST can be
    prepared: from files in the manual folder, else downloaded by tfds into an existing data dir
    (~/tensorflow_datasets, when the user named none, may be new)."""
    root = Path(_resolve_data_dir(data_dir))
    manual_dir = root / "downloads" / "manual"
    if _find_idx_files(manual_dir, required=False):  # Some there: all must be.
        _find_idx_files(manual_dir, required=True)
        return
    missing = not root.is_dir() and bool(data_dir or os.environ.get("TFDS_DATA_DIR"))
    error = _network_error(f"{MNIST_URL}train-labels-idx1-ubyte.gz")
    if missing or error is not None:
        raise MnistNotFoundError(_not_found_message(root, manual_dir, error, missing))


def _network_error(url: str) -> str | None:
    """None when `url` answers a HEAD request within NETWORK_TIMEOUT_S, else why not.

    urllib honours HTTP(S)_PROXY like tfds' downloader (requests). The request runs in a daemon
    thread so that the deadline also bounds DNS resolution, which socket timeouts do not.
    """
    import urllib.request  # Here: 25 ms of imports a load served from the cache does without.

    result = {"error": "no answer"}

    def probe():
        request = urllib.request.Request(url, method="HEAD")
        try:
            urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_S).close()
            result["error"] = None
        except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors.
            result["error"] = str(err)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(NETWORK_TIMEOUT_S)
    return result["error"]


def _not_found_message(
    data_dir, manual_dir, network_error: str | None, missing: bool = False
) -> str:
    """The three ways to provide MNIST; `missing`: the data dir named does not exist."""
    file_names = ", ".join(f"{name}.gz" for name in MNIST_SHA256)
    network = (
        "answers now"
        if network_error is None
        else f"not reachable within {NETWORK_TIMEOUT_S:g} s: {network_error}"
    )
    connect = f"Create {data_dir} and connect" if missing else "Connect"
    problem = (
        "the folder does not exist (a mistyped path?), and nothing was created"
        if missing
        else "it could not be fetched"
    )
    return (
        f"MNIST is not in {data_dir}: {problem}. Any one of these works:\n"
        f"  1. Use a data dir that holds the prepared tfds dataset mnist/3.0.1 (array_record):"
        f" load_mnist(..., data_dir=DIR), --data-dir DIR, or TFDS_DATA_DIR=DIR.\n"
        f"  2. Put the four MNIST files (gzip-compressed, or uncompressed without .gz) in"
        f" {manual_dir}/: {file_names}; or import them from any folder with:"
        f" python -m mnist_jax.data prepare SOURCE_DIR --data-dir {data_dir}\n"
        f"  3. {connect} to the network: tfds downloads them from {MNIST_URL} ({network})."
    )


# --- Preprocessing -------------------------------------------------------------------------------


def flatten(images_NxHxWxC: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, H*W*C), as the tutorial's dense layers take them."""
    return images_NxHxWxC.reshape(len(images_NxHxWxC), -1)


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels in [0, 255] -> float32 in [0, 1]."""
    return images.astype(np.float32) / 255.0


def to_inputs(images_Nx28x28x1: np.ndarray, raw_pixels: bool = False) -> np.ndarray:
    """Model inputs float32 (N, 28, 28, 1), images still (a model flattens them if it wants):
    scaled to [0, 1], or raw [0, 255] as the tutorial has them (its `/255` is commented out)."""
    return images_Nx28x28x1.astype(np.float32) if raw_pixels else scale(images_Nx28x28x1)


def one_hot(labels_N: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Integer labels (N,) -> float32 one-hot (N, num_classes)."""
    return np.eye(num_classes, dtype=np.float32)[labels_N]


# --- Command line --------------------------------------------------------------------------------


# --- Command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_jax.data", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser(
        "prepare", help="import the four MNIST IDX files into a tfds data dir"
    )
    prep.add_argument("source_dir", help="folder with the four IDX files, .gz or uncompressed")
    prep.add_argument(
        "--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR, else ~/tensorflow_datasets)"
    )
    prep.add_argument(
        "--force", action="store_true", help="rebuild mnist even if prepared (a damaged one)"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    data_dir = _resolve_data_dir(args.data_dir)
    if is_prepared(data_dir) and not args.force:
        target = _dataset_folder(data_dir)
        print(f"mnist is already prepared in {target}; nothing to do (--force rebuilds it).")
        return 0
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    try:
        target = prepare(args.source_dir, data_dir, force=args.force)
    except MnistError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sizes = _tfds().split_sizes(data_dir)
    counts = ", ".join(f"{name} {size}" for name, size in sizes.items())
    seconds = time.perf_counter() - start
    print(f"Prepared mnist ({counts}) from {args.source_dir} in {target} in {seconds:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
