"""MNIST through tensorflow-datasets without TensorFlow: prepare, load, preprocess.

The data is tfds' official `mnist` dataset (3.0.1), stored as `array_record` and read with
`tfds.data_source`. `load_mnist` finds it, in this order:

  a. prepared in the tfds data dir (`data_dir`, else `$TFDS_DATA_DIR`, else ~/tensorflow_datasets);
  b. the four IDX files (gzip or not) in `<data_dir>/downloads/manual/`, imported automatically;
  c. tfds' download from the MNIST mirror, when the mirror answers within NETWORK_TIMEOUT_S.

A data dir that was named (argument or $TFDS_DATA_DIR) must exist: a mistyped one is an error,
never created. Without b or c, nothing is created or announced.

tfds' own MNIST code needs TensorFlow to prepare the dataset (`tf.io.gfile`, `tf.image.encode_png`),
so `_MnistBuilder` prepares the same dataset from numpy arrays and Pillow-encoded PNGs.

Decoding a split (protos and PNGs) takes seconds, so the arrays are cached as
`mnist_jax-cache-<key>.npz` inside the dataset's folder `<data_dir>/mnist/3.0.1/` (removed with
it), or in `$XDG_CACHE_HOME/mnist_jax/` (~/.cache) when that folder is read-only. The key hashes
the cache version, the split and the content of its array_record files, so an entry is never
served for changed files; a damaged entry is decoded anew, an unwritable place only skipped.
A damaged dataset file is a MnistFileError naming it and the command that rebuilds it:

    python -m mnist_jax.data prepare SOURCE_DIR [--data-dir DIR] [--force]
"""

import argparse
import contextlib
import functools
import gzip
import hashlib
import io
import os
import struct
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.image_classification.mnist import MNIST
from tensorflow_datasets.proto import tf_example_pb2

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
MNIST_URL = MNIST.URL  # The mirror tfds downloads from.
# The no-network answer must come fast: tfds' own download retries for minutes before failing.
NETWORK_TIMEOUT_S = 5.0
# Decoded splits are cached as `<CACHE_PREFIX><key>.npz`; bump the version when the layout or the
# decoding changes, so that no older file matches.
CACHE_VERSION = 1
CACHE_PREFIX = "mnist_jax-cache-"
# What `tfds.testing.mock_data` replaces (see `_tfds_is_mocked`).
_TFDS_METHODS = (
    tfds.core.DatasetBuilder.download_and_prepare,
    tfds.core.DatasetBuilder.as_data_source,
)


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
    nothing then. Serves the decoded arrays from the cache when it matches the files. Works under
    `tfds.testing.mock_data` (pass `split=` explicitly), which replaces preparing and reading.
    """
    builder = _MnistBuilder(data_dir=_resolve_data_dir(data_dir))
    if _tfds_is_mocked():
        return _read_mock_split(builder, split)
    if not _is_prepared(builder):
        _check_obtainable(data_dir)  # Before tfds prints "Downloading..." or creates folders.
        builder.download_and_prepare(
            file_format="array_record",
            download_config=tfds.download.DownloadConfig(try_download_gcs=False),
        )
    raw = _raw_source(builder, split)
    files = [Path(fi.filename) for fi in builder.info.splits[split].file_instructions]
    key = _cache_key(split, files, builder)
    if (cached := _read_cache(builder, key)) is not None:
        return cached
    try:
        records = raw.__getitems__(range(len(raw)))
    except (RuntimeError, OSError, IndexError) as err:  # Riegeli's checks fail as RuntimeError.
        raise MnistFileError(_damaged_message(files, builder, err)) from err
    images, labels = _decode_records(records)
    _write_cache(builder, key, images, labels)
    return images, labels


def _resolve_data_dir(data_dir: str | None) -> str:
    """`data_dir`, else $TFDS_DATA_DIR, else tfds' default ~/tensorflow_datasets."""
    return os.path.expanduser(
        data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    )


def _tfds_is_mocked() -> bool:
    """Whether `tfds.testing.mock_data` has replaced tfds' preparing and reading (it patches
    DatasetBuilder): its fake examples must come through, neither real files nor the cache."""
    builder = tfds.core.DatasetBuilder
    return (builder.download_and_prepare, builder.as_data_source) != _TFDS_METHODS


def _read_mock_split(builder: MNIST, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split through tfds' own decoding (mock_data's sources have no batched raw read)."""
    source = builder.as_data_source(split)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([ex["image"] for ex in examples])
    return images, np.array([ex["label"] for ex in examples], np.int32)


def _raw_source(builder: MNIST, split: str):
    """tfds' data source of the split's serialized examples (opening reads no record yet)."""
    try:
        return builder.as_data_source(
            split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
        )
    except NotImplementedError as err:  # Prepared by tfds with TensorFlow, as tfrecord.
        raise MnistError(
            f"{builder.data_dir} holds mnist in a format only TensorFlow reads ({err}). Prepare an"
            " array_record copy in another data dir: python -m mnist_jax.data prepare SOURCE_DIR"
            " --data-dir OTHER_DIR"
        ) from err


def _damaged_message(files: list[Path], builder: MNIST, err: Exception) -> str:
    """One line: which file, what the reader said, and the command that rebuilds the dataset."""
    detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return (
        f"{', '.join(map(str, files))}: damaged, truncated or unreadable ({detail}). Rebuild the"
        f" dataset from the four MNIST IDX files: python -m mnist_jax.data prepare SOURCE_DIR"
        f" --data-dir {builder.data_dir_root} --force"
    )


def _decode_records(records: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Serialized tf.train.Examples -> images uint8 (N, 28, 28, 1), labels int32 (N,).

    tfds' per-example decoding costs ~90 us an image in Python (6 s for MNIST); parsing the
    protos here and decoding the PNGs with Pillow directly takes about a third of that.
    """
    features = [tf_example_pb2.Example.FromString(r).features.feature for r in records]
    labels_N = np.array([f["label"].int64_list.value[0] for f in features], np.int32)
    pixels = b"".join(_decode_png(f["image"].bytes_list.value[0]) for f in features)
    return np.frombuffer(pixels, np.uint8).reshape(-1, *IMAGE_SHAPE), labels_N


def _decode_png(png: bytes) -> bytes:
    """One image's 784 grayscale bytes."""
    image = Image.open(io.BytesIO(png))
    if image.size != IMAGE_SHAPE[:2]:
        raise MnistError(f"an MNIST image of {image.size[0]}x{image.size[1]} pixels, not 28x28")
    return (image if image.mode == "L" else image.convert("L")).tobytes()


# --- Cache of decoded splits ---------------------------------------------------------------------


def _cache_key(split: str, files: list[Path], builder: MNIST) -> str:
    """Names the decoded arrays by what they came from: the cache format, the split and the
    content (BLAKE2b) of its array_record files; a changed file never meets an old entry."""
    key = hashlib.blake2b(f"{CACHE_VERSION} {split}".encode(), digest_size=16)
    for path in files:
        try:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "blake2b").digest()
        except OSError as err:
            raise MnistFileError(_damaged_message([path], builder, err)) from err
        key.update(path.name.encode() + digest)
    return key.hexdigest()


def _cache_folders(builder: MNIST) -> list[Path]:
    """Where the cache may live, in order: inside the dataset's folder (it goes when the dataset
    goes), else the user's cache dir (a read-only data dir)."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return [Path(builder.data_dir), user_cache / "mnist_jax"]


def _read_cache(builder: MNIST, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when there are none: a damaged, truncated or unreadable cache
    file is passed over (npz checks each member's CRC-32) and the split is decoded again."""
    for folder in _cache_folders(builder):
        try:
            with np.load(folder / f"{CACHE_PREFIX}{key}.npz") as npz:
                images, labels = npz["images"], npz["labels"]
        except Exception:  # BadZipFile, OSError, KeyError...: any only means decoding again.
            continue
        expected = (np.uint8, np.int32, IMAGE_SHAPE, images.shape[:1])
        if (images.dtype, labels.dtype, images.shape[1:], labels.shape) == expected:
            return images, labels
    return None


def _write_cache(builder: MNIST, key: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Saves the arrays in the first writable cache folder; when none is, says so once and
    carries on (the load has its arrays: a cache only makes the next one fast)."""
    errors = []
    for folder in _cache_folders(builder):
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
    builder = _MnistBuilder(data_dir=data_dir)
    target = Path(builder.data_dir)  # <data_dir>/mnist/3.0.1
    if _is_prepared(builder) and not force:
        return target
    splits = _read_splits(_find_idx_files(Path(source_dir), required=True), checksums)
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mnist-prepare-", dir=data_dir) as tmp:
        with contextlib.redirect_stdout(io.StringIO()):  # tfds would announce the temporary path.
            _MnistBuilder(data_dir=tmp, splits=splits).download_and_prepare(
                file_format="array_record",
                download_config=tfds.download.DownloadConfig(try_download_gcs=False),
            )
        built = Path(tmp) / target.relative_to(data_dir)
        try:
            if target.exists():  # With `force`, or an incomplete one: it goes with `tmp`.
                target.rename(Path(tmp) / "replaced")
            # Move the whole `mnist/` when it is new, so a failure cannot leave it empty.
            if target.parent.exists():
                built.rename(target)
            else:
                built.parent.rename(target.parent)
        except OSError:
            if not _is_prepared(_MnistBuilder(data_dir=data_dir)):
                raise
            # Another prepare finished first: its dataset is as good as ours.
    return target


def _is_prepared(builder: MNIST) -> bool:
    """Whether the builder's dataset folder is complete (it only ever appears whole, by a rename).

    Quieter than `builder.is_prepared()`, which logs a warning for a missing folder.
    """
    return (Path(builder.data_dir) / "dataset_info.json").is_file()


def is_prepared(data_dir: str | None = None) -> bool:
    """Whether MNIST is prepared in the tfds data dir `load_mnist` would use, so that loading it
    needs to write nothing there (a read-only data dir then works: the cache goes elsewhere)."""
    return _is_prepared(_MnistBuilder(data_dir=_resolve_data_dir(data_dir)))


class _MnistBuilder(MNIST, skip_registration=True):
    """tfds' `mnist` builder (same name, version and features), prepared without TensorFlow.

    Not registered: `tfds.builder('mnist')` stays tfds' own class, which reads what this writes.
    `splits` gives the data ({split: (images, labels)}); without it, `_split_generators` takes the
    IDX files from `<data_dir>/downloads/manual/` or downloads them with tfds (`_check_obtainable`
    has checked before that one of them will do).
    """

    name = "mnist"
    url_infos = MNIST.url_infos  # tfds' registered checksums of the mirror's .gz files.

    def __init__(self, *, splits=None, **kwargs):
        self._splits = splits
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        splits = self._splits or _read_splits(self._fetch_idx_files(dl_manager), MNIST_SHA256)
        return {split: _examples(images, labels) for split, (images, labels) in splits.items()}

    def _fetch_idx_files(self, dl_manager) -> dict[str, Path]:
        """Paths of the four IDX files: the manual folder's, else downloaded by tfds."""
        manual_dir = Path(self.data_dir_root) / "downloads" / "manual"
        if _find_idx_files(manual_dir, required=False):  # Some there: all must be.
            return _find_idx_files(manual_dir, required=True)
        return dl_manager.download({name: f"{MNIST_URL}{name}.gz" for name in MNIST_SHA256})


def _examples(images_Nx28x28: np.ndarray, labels_N: np.ndarray):
    """(key, example) pairs for tfds' writer; the image as PNG bytes, encoded by Pillow."""
    for i, (image, label) in enumerate(zip(images_Nx28x28, labels_N, strict=True)):
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        yield i, {"image": png.getvalue(), "label": int(label)}


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
    """Model inputs float32 (N, 784): scaled to [0, 1], or raw [0, 255] as the tutorial has them

    (its `/255` line is commented out).
    """
    pixels_Nx784 = flatten(images_Nx28x28x1)
    return pixels_Nx784.astype(np.float32) if raw_pixels else scale(pixels_Nx784)


def one_hot(labels_N: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Integer labels (N,) -> float32 one-hot (N, num_classes)."""
    return np.eye(num_classes, dtype=np.float32)[labels_N]


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
    already = _is_prepared(_MnistBuilder(data_dir=data_dir)) and not args.force
    tfds.disable_progress_bar()
    try:
        target = prepare(args.source_dir, data_dir, force=args.force)
    except MnistError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if already:
        print(f"mnist is already prepared in {target}; nothing to do (--force rebuilds it).")
        return 0
    splits = _MnistBuilder(data_dir=data_dir).info.splits
    counts = ", ".join(f"{name} {split.num_examples}" for name, split in splits.items())
    seconds = time.perf_counter() - start
    print(f"Prepared mnist ({counts}) from {args.source_dir} in {target} in {seconds:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
