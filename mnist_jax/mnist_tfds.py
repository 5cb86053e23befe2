"""The part of mnist_jax.data that needs tensorflow_datasets (a second of imports): preparing the
dataset, reading and decoding its records, tfds' mock data. `mnist_jax.data` imports it only
when a split is not served from its cache of decoded arrays, or a dataset is built.

tfds' own MNIST code needs TensorFlow to prepare the dataset (`tf.io.gfile`, `tf.image.encode_png`),
so `_MnistBuilder` prepares the same dataset from numpy arrays and Pillow-encoded PNGs.
"""

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.image_classification.mnist import MNIST
from tensorflow_datasets.proto import tf_example_pb2

from mnist_jax import data


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
        splits = self._splits or data._read_splits(
            self._fetch_idx_files(dl_manager), data.MNIST_SHA256
        )
        return {split: _examples(images, labels) for split, (images, labels) in splits.items()}

    def _fetch_idx_files(self, dl_manager) -> dict[str, Path]:
        """Paths of the four IDX files: the manual folder's, else downloaded by tfds."""
        manual_dir = Path(self.data_dir_root) / "downloads" / "manual"
        if data._find_idx_files(manual_dir, required=False):  # Some there: all must be.
            return data._find_idx_files(manual_dir, required=True)
        return dl_manager.download(
            {name: f"{data.MNIST_URL}{name}.gz" for name in data.MNIST_SHA256}
        )


def _examples(images_Nx28x28: np.ndarray, labels_N: np.ndarray):
    """(key, example) pairs for tfds' writer; the image as PNG bytes, encoded by Pillow."""
    for i, (image, label) in enumerate(zip(images_Nx28x28, labels_N, strict=True)):
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        yield i, {"image": png.getvalue(), "label": int(label)}


def _download_config() -> tfds.download.DownloadConfig:
    return tfds.download.DownloadConfig(try_download_gcs=False)


# --- Preparing -----------------------------------------------------------------------------------


def download_and_prepare(data_dir: str) -> None:
    """Prepares the dataset in `data_dir` from its manual folder or tfds' download
    (`data._check_obtainable` has said that one of them will do)."""
    _MnistBuilder(data_dir=data_dir).download_and_prepare(
        file_format="array_record", download_config=_download_config()
    )


def build(splits: dict[str, tuple[np.ndarray, np.ndarray]], data_dir: Path) -> None:
    """Writes the dataset of `splits` into `data_dir`, replacing any there: built in a temporary
    folder inside `data_dir` and renamed into place, so a failed or interrupted build leaves no
    partial dataset (an old one goes only once the new one is complete)."""
    target = data._dataset_folder(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mnist-prepare-", dir=data_dir) as tmp:
        with contextlib.redirect_stdout(io.StringIO()):  # tfds would announce the temporary path.
            _MnistBuilder(data_dir=tmp, splits=splits).download_and_prepare(
                file_format="array_record", download_config=_download_config()
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
            if not data.is_prepared(str(data_dir)):
                raise
            # Another prepare finished first: its dataset is as good as ours.


def split_sizes(data_dir: str) -> dict[str, int]:
    """{split: number of examples} of the prepared dataset."""
    splits = _MnistBuilder(data_dir=data_dir).info.splits
    return {name: split.num_examples for name, split in splits.items()}


# --- Reading -------------------------------------------------------------------------------------


def read_mock_split(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split through tfds' own decoding (mock_data's sources have no batched raw read)."""
    source = _MnistBuilder(data_dir=data_dir).as_data_source(split)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([ex["image"] for ex in examples])
    return images, np.array([ex["label"] for ex in examples], np.int32)


class RawSplit:
    """A prepared split's serialized examples as tfds reads them: `files`, the array_record files
    in order; `decode()`, all its examples decoded (opening reads no record yet)."""

    def __init__(self, data_dir: str, split: str):
        builder = _MnistBuilder(data_dir=data_dir)
        try:
            self._source = builder.as_data_source(
                split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
            )
        except NotImplementedError as err:  # Prepared by tfds with TensorFlow, as tfrecord.
            raise data.MnistError(
                f"{builder.data_dir} holds mnist in a format only TensorFlow reads ({err}). Prepare"
                " an array_record copy in another data dir: python -m mnist_jax.data prepare"
                " SOURCE_DIR --data-dir OTHER_DIR"
            ) from err
        self.data_dir_root = builder.data_dir_root
        self.files = [Path(fi.filename) for fi in builder.info.splits[split].file_instructions]

    def decode(self) -> tuple[np.ndarray, np.ndarray]:
        """Images uint8 (N, 28, 28, 1), labels int32 (N,); a MnistFileError naming the files
        when they are damaged."""
        try:
            records = self._source.__getitems__(range(len(self._source)))
        except (RuntimeError, OSError, IndexError) as err:  # Riegeli's checks fail as RuntimeError.
            raise data.MnistFileError(
                data._damaged_message(self.files, self.data_dir_root, err)
            ) from err
        return _decode_records(records)


def _decode_records(records: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Serialized tf.train.Examples -> images uint8 (N, 28, 28, 1), labels int32 (N,).

    tfds' per-example decoding costs ~90 us an image in Python (6 s for MNIST); parsing the
    protos here and decoding the PNGs with Pillow directly takes about a third of that.
    """
    features = [tf_example_pb2.Example.FromString(r).features.feature for r in records]
    labels_N = np.array([f["label"].int64_list.value[0] for f in features], np.int32)
    pixels = b"".join(_decode_png(f["image"].bytes_list.value[0]) for f in features)
    return np.frombuffer(pixels, np.uint8).reshape(-1, *data.IMAGE_SHAPE), labels_N


def _decode_png(png: bytes) -> bytes:
    """One image's 784 grayscale bytes."""
    image = Image.open(io.BytesIO(png))
    if image.size != data.IMAGE_SHAPE[:2]:
        raise data.MnistError(
            f"an MNIST image of {image.size[0]}x{image.size[1]} pixels, not 28x28"
        )
    return (image if image.mode == "L" else image.convert("L")).tobytes()
