"""The tfds datasets mnist_jax registers, as plain data: what tfds calls each one, where its
prepared copy lives in a data dir, its images and classes, and the files its authors publish.

Spelled out here, not asked of tfds, so that a split served from the decoded cache needs no
tensorflow_datasets import; a test checks every value against tfds' own.
"""

import dataclasses
from pathlib import Path

DIGITS = tuple(str(d) for d in range(10))

# SHA-256 of the canonical uncompressed MNIST IDX files (LeCun, Cortes and Burges): checking the
# content lets a gzip-compressed or an uncompressed copy in.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# MNIST's file names, the same in Fashion-MNIST and KMNIST: split -> (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclasses.dataclass(frozen=True)
class Published:
    """The files a dataset's authors publish, as tfds downloads them.

    `split_files`: split -> (images, labels), gzip-compressed IDX files. With `archive`, they
    are members of that one archive (EMNIST publishes a zip of all its variants). Checksums are
    tfds' registered SHA-256s of the files as published (`archive` or the .gz files), except
    with `content_sha256`, MNIST's checksums of the uncompressed content.
    """

    url: str  # the folder (or, with `archive`, the archive) tfds downloads from
    split_files: dict[str, tuple[str, str]]
    archive: str | None = None
    content_sha256: dict[str, str] | None = None

    def source_names(self) -> list[str]:
        """The file names to put in a source folder."""
        if self.archive:
            return [self.archive]
        return [name for pair in self.split_files.values() for name in pair]

    @property
    def probe_url(self) -> str:
        """A small file (or the archive) whose answer says whether the download would work."""
        return self.url if self.archive else f"{self.url}{self.split_files['train'][1]}"

    def urls(self) -> dict[str, str]:
        """{file name: URL} of what tfds downloads."""
        if self.archive:
            return {self.archive: self.url}
        return {name: f"{self.url}{name}" for name in self.source_names()}


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
    """A tfds dataset of 28x28 grayscale digits-like images, as mnist_jax reads it."""

    name: str  # mnist_jax's and tfds' name, "emnist/digits" for a builder config
    version: str
    class_names: tuple[str, ...]
    published: Published
    image_shape: tuple[int, int, int] = (28, 28, 1)
    title: str = ""  # how the message names it in prose

    @property
    def tfds_name(self) -> str:
        """The builder's name, without its config: `emnist`."""
        return self.name.partition("/")[0]

    @property
    def config(self) -> str | None:
        return self.name.partition("/")[2] or None

    def folder(self, data_dir: str | Path) -> Path:
        """The prepared dataset's folder in a data dir (tfds' `builder.data_dir`):
        `<data_dir>/mnist/3.0.1`, `<data_dir>/emnist/digits/3.1.0`."""
        return Path(data_dir, *self.name.split("/"), self.version)

    def is_prepared(self, data_dir: str | Path) -> bool:
        """Whether the dataset is prepared in `data_dir`: its folder only ever appears whole, by
        a rename. Quieter than tfds' `builder.is_prepared()`, which warns of a missing folder."""
        return (self.folder(data_dir) / "dataset_info.json").is_file()

    def prepare_prefix(self) -> str:
        """Temporary folders of a prepare in the data dir start with this."""
        return f".{self.name.replace('/', '-')}-prepare-"


def _emnist_files(config: str) -> dict[str, tuple[str, str]]:
    """The members of EMNIST's zip holding one variant's splits."""

    def member(split: str, kind: str) -> str:
        return f"gzip/emnist-{config}-{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"

    return {
        split: (member(split, "images"), member(split, "labels")) for split in ("train", "test")
    }


SPECS = {
    spec.name: spec
    for spec in (
        TfdsSpec(
            "mnist",
            "3.0.1",
            DIGITS,
            Published(
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                IDX_FILES,
                content_sha256=MNIST_SHA256,
            ),
            title="MNIST",
        ),
        TfdsSpec(
            "fashion_mnist",
            "3.0.1",
            (
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            Published("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", IDX_FILES),
            title="Fashion-MNIST",
        ),
        TfdsSpec(
            "kmnist",
            "3.0.1",
            ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            Published("http://codh.rois.ac.jp/kmnist/dataset/kmnist/", IDX_FILES),
            title="Kuzushiji-MNIST",
        ),
        TfdsSpec(
            "emnist/digits",
            "3.1.0",
            DIGITS,
            Published(
                "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                _emnist_files("digits"),
                archive="gzip.zip",
            ),
            title="EMNIST Digits",
        ),
    )
}
