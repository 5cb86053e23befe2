"""The part of the data layer that needs tensorflow_datasets (a second of imports): tfds'
builders prepared without TensorFlow, reading and decoding their records, tfds' mock data.
`mnist_jax.datasets.loading` imports it only when a split is not served from the cache of
decoded arrays, or a dataset is built.

tfds' own builders of these datasets need TensorFlow to prepare them (`tf.io.gfile`,
`tf.image.encode_png`), so each is subclassed here to prepare the same dataset (same name,
version, features and files) from numpy arrays and Pillow-encoded PNGs. Not registered:
`tfds.builder('mnist')` stays tfds' own class, which reads what these write.
"""

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.image_classification import mnist as tfds_mnist
from tensorflow_datasets.proto import tf_example_pb2

from mnist_jax.datasets import files, messages
from mnist_jax.datasets.catalog import TfdsSpec
from mnist_jax.datasets.errors import DataError, DataFileError


class _FromArrays:
    """Prepares a tfds builder's dataset from arrays: `splits` ({split: (images, labels)}), or
    else the published files in `<data_dir>/downloads/manual/`, or else tfds' download of them
    (`loading` has checked before that one of these will do)."""

    def __init__(self, *, spec: TfdsSpec, splits=None, **kwargs):
        self._spec, self._splits = spec, splits
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        spec = self._spec
        splits = self._splits or files.read_splits(
            spec.published, self._fetch(dl_manager), checksums(spec), spec.image_shape[:2]
        )
        return {split: _examples(images, labels) for split, (images, labels) in splits.items()}

    def _fetch(self, dl_manager) -> dict[str, Path]:
        """Paths of the published files: the manual folder's, else downloaded by tfds."""
        spec = self._spec
        manual_dir = Path(self.data_dir_root) / "downloads" / "manual"
        if files.find(spec.published, manual_dir, False, spec.name):  # Some there: all must be.
            return files.find(spec.published, manual_dir, True, spec.name)
        return {k: Path(v) for k, v in dl_manager.download(spec.published.urls()).items()}


class _Mnist(_FromArrays, tfds_mnist.MNIST, skip_registration=True):
    name = "mnist"
    url_infos = tfds_mnist.MNIST.url_infos  # tfds' registered checksums of the published files


class _FashionMnist(_FromArrays, tfds_mnist.FashionMNIST, skip_registration=True):
    name = "fashion_mnist"
    url_infos = tfds_mnist.FashionMNIST.url_infos


class _Kmnist(_FromArrays, tfds_mnist.KMNIST, skip_registration=True):
    name = "kmnist"
    url_infos = tfds_mnist.KMNIST.url_infos


class _Emnist(_FromArrays, tfds_mnist.EMNIST, skip_registration=True):
    name = "emnist"
    url_infos = tfds_mnist.EMNIST.url_infos


BUILDERS = {cls.name: cls for cls in (_Mnist, _FashionMnist, _Kmnist, _Emnist)}


def builder(spec: TfdsSpec, data_dir, splits=None) -> tfds.core.DatasetBuilder:
    """The dataset's tfds builder; tfds' progress bars off, as every message here is one line
    of this package's own."""
    tfds.disable_progress_bar()
    with _temporaries_removed():
        return BUILDERS[spec.tfds_name](
            spec=spec, splits=splits, data_dir=str(data_dir), config=spec.config
        )


@contextlib.contextmanager
def _temporaries_removed():
    """tfds' builder, made where its dataset is not yet prepared (every prepare, mock data),
    makes an empty `tmp*tfds` folder (`DatasetInfo.initialize_from_bucket`) and leaves it in
    $TMPDIR: the temporary files made meanwhile go in a folder of ours, removed after."""
    with tempfile.TemporaryDirectory(prefix="mnist_jax-tfds-") as scratch:
        before, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            yield
        finally:
            tempfile.tempdir = before


def checksums(spec: TfdsSpec) -> dict[str, str]:
    """SHA-256 by published file name, as `files.read_splits` checks them: tfds' registered
    ones, or MNIST's of the uncompressed content."""
    if spec.published.content_sha256:
        return spec.published.content_sha256
    return {info.filename: info.checksum for info in BUILDERS[spec.tfds_name].url_infos.values()}


def _examples(images_NxHxW: np.ndarray, labels_N: np.ndarray):
    """(key, example) pairs for tfds' writer; the image as PNG bytes, encoded by Pillow."""
    for i, (image, label) in enumerate(zip(images_NxHxW, labels_N, strict=True)):
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        yield i, {"image": png.getvalue(), "label": int(label)}


def _download_config() -> tfds.download.DownloadConfig:
    return tfds.download.DownloadConfig(try_download_gcs=False)


# --- Preparing -----------------------------------------------------------------------------------


def download_and_prepare(spec: TfdsSpec, data_dir: str) -> None:
    """Prepares the dataset in `data_dir` from its manual folder or tfds' download."""
    builder(spec, data_dir).download_and_prepare(
        file_format="array_record", download_config=_download_config()
    )


def build(spec: TfdsSpec, splits: dict[str, tuple[np.ndarray, np.ndarray]], data_dir: Path):
    """Writes the dataset of `splits` into `data_dir`, replacing any there: built in a temporary
    folder inside `data_dir` and renamed into place, so a failed or interrupted build leaves no
    partial dataset (an old one goes only once the new one is complete). The temporary folders
    of killed prepares are removed first."""
    target = spec.folder(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(spec, data_dir)
    prefix = f"{spec.prepare_prefix()}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=data_dir) as tmp:
        with contextlib.redirect_stdout(io.StringIO()):  # tfds would announce the temporary path.
            builder(spec, tmp, splits).download_and_prepare(
                file_format="array_record", download_config=_download_config()
            )
        try:
            if target.exists():  # With `force`, or an incomplete one: it goes with `tmp`.
                target.rename(Path(tmp) / "replaced")
            # The highest new folder moves whole, so a failure cannot leave an empty one.
            new = target
            while new.parent != data_dir and not new.parent.exists():
                new = new.parent
            (Path(tmp) / new.relative_to(data_dir)).rename(new)
        except OSError:
            if not spec.is_prepared(data_dir):
                raise
            # Another prepare finished first: its dataset is as good as ours.


def remove_stale_temporaries(spec: TfdsSpec, data_dir: Path) -> None:
    """Removes the temporary folders that prepares of `spec` left when they were killed (their
    process is gone); a running prepare's stays."""
    for path in data_dir.glob(f"{spec.prepare_prefix()}*"):
        pid = path.name.removeprefix(spec.prepare_prefix()).partition("-")[0]
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's process.
        return True
    return True


def split_sizes(spec: TfdsSpec, data_dir: str) -> dict[str, int]:
    """{split: number of examples} of the prepared dataset."""
    splits = builder(spec, data_dir).info.splits
    return {name: split.num_examples for name, split in splits.items()}


# --- Reading -------------------------------------------------------------------------------------


def read_mock_split(spec: TfdsSpec, data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split through tfds' own decoding (mock_data's sources have no batched raw read)."""
    source = builder(spec, data_dir).as_data_source(split)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([ex["image"] for ex in examples])
    return images, np.array([ex["label"] for ex in examples], np.int32)


class RawSplit:
    """A prepared split's serialized examples as tfds reads them: `files`, the array_record files
    in order; `num_examples`; `decode()`, all its examples decoded (opening reads no record)."""

    def __init__(self, spec: TfdsSpec, data_dir: str, split: str):
        prepared = builder(spec, data_dir)
        try:
            self._source = prepared.as_data_source(
                split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
            )
        except NotImplementedError as err:  # Prepared by tfds with TensorFlow, as tfrecord.
            raise DataError(
                f"{prepared.data_dir} holds {spec.name} in a format only TensorFlow reads ({err})."
                " Prepare an array_record copy in another data dir: "
                + messages.prepare_command(spec, data_dir="OTHER_DIR")
            ) from err
        self._spec = spec
        self.data_dir_root = prepared.data_dir_root
        info = prepared.info.splits[split]
        self.files = [Path(fi.filename) for fi in info.file_instructions]
        self.num_examples = info.num_examples

    def decode(self) -> tuple[np.ndarray, np.ndarray]:
        """Images uint8 (N, H, W, C), labels int32 (N,); a DataFileError naming the files when
        they are damaged."""
        try:
            records = self._source.__getitems__(range(len(self._source)))
        except (RuntimeError, OSError, IndexError) as err:  # Riegeli's checks fail as RuntimeError.
            raise DataFileError(
                messages.damaged(self._spec, self.files, self.data_dir_root, err)
            ) from err
        return decode_records(records, self._spec.image_shape)


def decode_records(records: list[bytes], image_shape) -> tuple[np.ndarray, np.ndarray]:
    """Serialized tf.train.Examples -> images uint8 (N, *image_shape), labels int32 (N,).

    tfds' per-example decoding costs ~90 us an image in Python (6 s for MNIST); parsing the
    protos here and decoding the PNGs with Pillow directly takes about a third of that.
    """
    features = [tf_example_pb2.Example.FromString(r).features.feature for r in records]
    labels_N = np.array([f["label"].int64_list.value[0] for f in features], np.int32)
    pixels = b"".join(_decode_png(f["image"].bytes_list.value[0], image_shape) for f in features)
    return np.frombuffer(pixels, np.uint8).reshape(-1, *image_shape), labels_N


def _decode_png(png: bytes, image_shape) -> bytes:
    """One grayscale image's bytes."""
    image = Image.open(io.BytesIO(png))
    height, width, _ = image_shape
    if image.size != (width, height):
        raise DataError(f"an image of {image.size[0]}x{image.size[1]} pixels, not {width}x{height}")
    return (image if image.mode == "L" else image.convert("L")).tobytes()
