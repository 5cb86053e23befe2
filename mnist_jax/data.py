"""MNIST through tensorflow-datasets without TensorFlow: prepare, load, preprocess.

The data is tfds' official `mnist` dataset (3.0.1), stored as `array_record` and read with
`tfds.data_source`. `load_mnist` finds it, in this order:

  a. prepared in the tfds data dir (`data_dir`, else `$TFDS_DATA_DIR`, else ~/tensorflow_datasets);
  b. the four IDX files (gzip or not) in `<data_dir>/downloads/manual/`, imported automatically;
  c. tfds' download from the MNIST mirror, when the mirror answers within NETWORK_TIMEOUT_S.

tfds' own MNIST code needs TensorFlow to prepare the dataset (`tf.io.gfile`, `tf.image.encode_png`),
so `_MnistBuilder` prepares the same dataset from numpy arrays and Pillow-encoded PNGs.

    python -m mnist_jax.data prepare SOURCE_DIR [--data-dir DIR]
"""

import argparse
import contextlib
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
    MnistNotFoundError, naming every way to provide MNIST, when there is no way. Works under
    `tfds.testing.mock_data` (pass `split=` explicitly), which replaces preparing and reading.
    """
    builder = _MnistBuilder(data_dir=_resolve_data_dir(data_dir))
    # A no-op when the dataset is there; otherwise `_MnistBuilder._split_generators` fetches it.
    builder.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(try_download_gcs=False),
    )
    try:
        raw = builder.as_data_source(
            split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
        )
    except NotImplementedError as err:  # Prepared by tfds with TensorFlow, as tfrecord.
        raise MnistError(
            f"{builder.data_dir} holds mnist in a format only TensorFlow reads ({err}). Prepare an"
            " array_record copy in another data dir: python -m mnist_jax.data prepare SOURCE_DIR"
            " --data-dir OTHER_DIR"
        ) from err
    try:
        records = raw.__getitems__(range(len(raw)))
    except TypeError:  # tfds.testing.mock_data's sources (tfds 4.9.10) have no batched read.
        source = builder.as_data_source(split)
        examples = [source[i] for i in range(len(source))]
        images = np.stack([ex["image"] for ex in examples])
        return images, np.array([ex["label"] for ex in examples], np.int32)
    return _decode_records(records)


def _resolve_data_dir(data_dir: str | None) -> str:
    """`data_dir`, else $TFDS_DATA_DIR, else tfds' default ~/tensorflow_datasets."""
    return os.path.expanduser(
        data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
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


# --- Preparing -----------------------------------------------------------------------------------


def prepare(
    source_dir: str | os.PathLike,
    data_dir: str | None = None,
    checksums: dict[str, str] = MNIST_SHA256,
) -> Path:
    """Imports the four IDX files in `source_dir` as tfds' `mnist`; returns the dataset's folder.

    Every file is checked (SHA-256 of the uncompressed bytes) before anything is written. The
    dataset is built in a temporary folder inside `data_dir` and renamed into place, so a failed or
    interrupted prepare leaves no partial dataset. A no-op when the dataset is already there.
    """
    data_dir = Path(_resolve_data_dir(data_dir))
    builder = _MnistBuilder(data_dir=data_dir)
    target = Path(builder.data_dir)  # <data_dir>/mnist/3.0.1
    if _is_prepared(builder):
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
        try:  # Move the whole `mnist/` when it is new, so a failure cannot leave it empty.
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
    writes nothing there (a read-only data dir then works)."""
    return _is_prepared(_MnistBuilder(data_dir=_resolve_data_dir(data_dir)))


class _MnistBuilder(MNIST, skip_registration=True):
    """tfds' `mnist` builder (same name, version and features), prepared without TensorFlow.

    Not registered: `tfds.builder('mnist')` stays tfds' own class, which reads what this writes.
    `splits` gives the data ({split: (images, labels)}); without it, `_split_generators` takes the
    IDX files from `<data_dir>/downloads/manual/` or downloads them with tfds.
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
        urls = {name: f"{MNIST_URL}{name}.gz" for name in MNIST_SHA256}
        if (error := _network_error(urls["train-labels-idx1-ubyte"])) is not None:
            raise MnistNotFoundError(_not_found_message(self.data_dir_root, manual_dir, error))
        return dl_manager.download(urls)


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


def _not_found_message(data_dir, manual_dir, network_error: str) -> str:
    file_names = ", ".join(f"{name}.gz" for name in MNIST_SHA256)
    return (
        f"MNIST is not in {data_dir} and could not be fetched. Any one of these works:\n"
        f"  1. Use a data dir that holds the prepared tfds dataset mnist/3.0.1 (array_record):"
        f" load_mnist(..., data_dir=DIR), --data-dir DIR, or TFDS_DATA_DIR=DIR.\n"
        f"  2. Put the four MNIST files (gzip-compressed, or uncompressed without .gz) in"
        f" {manual_dir}/: {file_names}; or import them from any folder with:"
        f" python -m mnist_jax.data prepare SOURCE_DIR --data-dir {data_dir}\n"
        f"  3. Connect to the network: tfds downloads them from {MNIST_URL} (not reachable within"
        f" {NETWORK_TIMEOUT_S:g} s: {network_error})."
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
    args = parser.parse_args(argv)

    start = time.perf_counter()
    data_dir = _resolve_data_dir(args.data_dir)
    already = _is_prepared(_MnistBuilder(data_dir=data_dir))
    tfds.disable_progress_bar()
    try:
        target = prepare(args.source_dir, data_dir)
    except MnistError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if already:
        print(f"mnist is already prepared in {target}; nothing to do.")
        return 0
    splits = _MnistBuilder(data_dir=data_dir).info.splits
    counts = ", ".join(f"{name} {split.num_examples}" for name, split in splits.items())
    seconds = time.perf_counter() - start
    print(f"Prepared mnist ({counts}) from {args.source_dir} in {target} in {seconds:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
