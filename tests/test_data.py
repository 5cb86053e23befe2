"""Tests of mnist_jax.data: mock data, small hand-written IDX files, and the real MNIST."""

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.proto import tf_example_pb2

from mnist_jax import commands, data, datasets
from mnist_jax.datasets import cache, catalog, loading, messages, tfds_builder

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "mnist"  # As in conftest.py.

TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
SMALL_SIZES = {"train": 12, "test": 5}
# split -> (images, labels) file names, uncompressed.
SPLIT_FILES = {s: tuple(n.removesuffix(".gz") for n in p) for s, p in catalog.IDX_FILES.items()}


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _as_multiset(images_Nx28x28x1: np.ndarray, labels_N: np.ndarray) -> np.ndarray:
    """Rows of label + pixels, sorted: equal for the same examples in any order."""
    rows_Nx785 = np.concatenate(
        [labels_N[:, None].astype(np.uint8), data.flatten(images_Nx28x28x1)], 1
    )
    return np.sort(np.ascontiguousarray(rows_Nx785).view(np.dtype((np.void, 785)))[:, 0])


@pytest.fixture
def small_mnist(tmp_path):
    """Four small IDX files in `source/` (train gzip-compressed, test not), their arrays and
    their checksums."""
    rng = np.random.default_rng(0)
    source, arrays, checksums = tmp_path / "source", {}, {}
    source.mkdir()
    for split, (images_name, labels_name) in SPLIT_FILES.items():
        arrays[split] = (
            rng.integers(0, 256, (SMALL_SIZES[split], 28, 28), np.uint8),
            rng.integers(0, 10, SMALL_SIZES[split], np.uint8),
        )
        for name, array in zip((images_name, labels_name), arrays[split], strict=True):
            raw = _idx_bytes(array)
            checksums[name] = hashlib.sha256(raw).hexdigest()
            if split == "train":
                (source / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (source / name).write_bytes(raw)
    return source, arrays, checksums


@pytest.fixture
def small_mnist_as_canonical(small_mnist, monkeypatch):
    """`small_mnist`, its checksums standing in for the canonical ones (for `load_mnist`)."""
    for name, digest in small_mnist[2].items():
        monkeypatch.setitem(data.MNIST_SHA256, name, digest)
    return small_mnist


def _assert_is_small_mnist(data_dir, arrays, spec=data.MNIST):
    for split, (images, labels) in arrays.items():
        got_images, got_labels = loading.load(spec, split, data_dir=str(data_dir))
        assert got_images.shape == (SMALL_SIZES[split], 28, 28, 1)
        assert got_images.dtype == np.uint8 and got_labels.dtype == np.int32
        np.testing.assert_array_equal(
            _as_multiset(got_images, got_labels), _as_multiset(images[..., None], labels)
        )


# --- Mock data -----------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_mock_load_mnist_shapes_and_dtypes(split, tmp_path):
    with tfds.testing.mock_data(num_examples=7):
        images, labels = data.load_mnist(split=split, data_dir=str(tmp_path))
    assert images.shape == (7, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (7,) and labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() < 10
    assert _listing(tmp_path) == []


def test_mock_preprocessing():
    with tfds.testing.mock_data(num_examples=9):
        images, labels = data.load_mnist(split="train")
    inputs = data.to_inputs(images)
    assert inputs.shape == (9, 28, 28, 1) and inputs.dtype == np.float32
    assert inputs.min() >= 0.0 and inputs.max() <= 1.0
    raw = data.to_inputs(images, raw_pixels=True)
    assert raw.dtype == np.float32
    np.testing.assert_array_equal(raw, images)
    np.testing.assert_allclose(inputs * 255.0, raw, rtol=1e-6)
    targets = data.one_hot(labels, 10)
    assert targets.shape == (9, 10) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets.argmax(1), labels)
    np.testing.assert_array_equal(targets.sum(1), np.ones(9))


# --- Preprocessing -------------------------------------------------------------------------------


def test_preprocessing_values():
    images = np.array([0, 51, 255, 1], np.uint8).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(data.flatten(images), [[0, 51, 255, 1]])
    inputs = data.to_inputs(images)
    assert inputs.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(inputs.ravel(), [0.0, 0.2, 1.0, 1 / 255], rtol=1e-6)
    np.testing.assert_array_equal(data.to_inputs(images, raw_pixels=True).ravel(), [0, 51, 255, 1])
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


# --- PNG decoding --------------------------------------------------------------------------------


def test_pngs_of_other_modes_decode_to_grayscale():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 2, (3, 28, 28), np.uint8) * 255
    records = []
    for i, image in enumerate(images):
        png = io.BytesIO()
        Image.fromarray(image).convert("1").save(png, format="PNG")  # 1-bit PNGs.
        example = tf_example_pb2.Example()
        example.features.feature["image"].bytes_list.value.append(png.getvalue())
        example.features.feature["label"].int64_list.value.append(i)
        records.append(example.SerializeToString())
    decoded, labels = tfds_builder.decode_records(records, (28, 28, 1))
    np.testing.assert_array_equal(decoded, images[..., None])
    np.testing.assert_array_equal(labels, [0, 1, 2])


# --- Preparing from small IDX files --------------------------------------------------------------


def test_prepare_small_files_then_load(small_mnist, tmp_path):
    source, arrays, checksums = small_mnist
    data_dir = tmp_path / "tfds"
    target = data.prepare(source, str(data_dir), checksums=checksums)
    assert target == data_dir / "mnist" / "3.0.1"
    assert _listing(data_dir) == [
        "mnist",
        "mnist/3.0.1",
        "mnist/3.0.1/dataset_info.json",
        "mnist/3.0.1/features.json",
        "mnist/3.0.1/mnist-test.array_record-00000-of-00001",
        "mnist/3.0.1/mnist-train.array_record-00000-of-00001",
    ]
    _assert_is_small_mnist(data_dir, arrays)
    # tfds' own registered builder and decoder read the same examples in the same order.
    source_ = tfds.data_source("mnist", split="train", data_dir=str(data_dir))
    images, labels = data.load_mnist("train", data_dir=str(data_dir))
    assert len(source_) == len(images)
    for i in range(len(source_)):
        np.testing.assert_array_equal(source_[i]["image"], images[i])
        assert source_[i]["label"] == labels[i]
    assert "tensorflow" not in sys.modules


def test_load_explains_a_dataset_only_tensorflow_reads(small_mnist, tmp_path):
    source, _, checksums = small_mnist
    info = data.prepare(source, str(tmp_path), checksums=checksums) / "dataset_info.json"
    info.write_text(info.read_text().replace('"array_record"', '"tfrecord"'))
    with pytest.raises(datasets.DataError, match="only TensorFlow reads"):
        data.load_mnist("train", data_dir=str(tmp_path))


def test_prepare_again_is_a_fast_noop(small_mnist, tmp_path):
    source, _, checksums = small_mnist
    data_dir = tmp_path / "tfds"
    data.prepare(source, str(data_dir), checksums=checksums)
    before = {p: p.stat().st_mtime_ns for p in data_dir.rglob("*")}
    start = time.perf_counter()
    data.prepare(source, str(data_dir), checksums=checksums)
    assert time.perf_counter() - start < 1.0
    assert {p: p.stat().st_mtime_ns for p in data_dir.rglob("*")} == before


def _corrupt(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-20])


@pytest.mark.parametrize(
    ("damage", "name", "error"),
    [
        (_corrupt, "t10k-images-idx3-ubyte", datasets.DataFileError),  # Uncompressed: bad SHA-256.
        (_corrupt, "train-labels-idx1-ubyte.gz", datasets.DataFileError),  # Bad gzip CRC.
        (_truncate, "train-images-idx3-ubyte.gz", datasets.DataFileError),
        (_truncate, "t10k-labels-idx1-ubyte", datasets.DataFileError),
        (Path.unlink, "train-labels-idx1-ubyte.gz", datasets.DataNotFoundError),
    ],
)
@pytest.mark.parametrize("data_dir_exists", [True, False])
def test_prepare_refuses_bad_file_and_leaves_data_dir_as_it_was(
    small_mnist, tmp_path, damage, name, error, data_dir_exists
):
    source, _, checksums = small_mnist
    damage(source / name)
    data_dir = tmp_path / "tfds"
    if data_dir_exists:
        (data_dir / "other_dataset" / "1.0.0").mkdir(parents=True)
        (data_dir / "other_dataset" / "1.0.0" / "keep.txt").write_text("keep")
    before = _listing(data_dir)
    with pytest.raises(error, match=name):
        data.prepare(source, str(data_dir), checksums=checksums)
    assert _listing(data_dir) == before
    assert data_dir.exists() == data_dir_exists


def test_prepare_failing_midway_leaves_data_dir_as_it_was(small_mnist, tmp_path, monkeypatch):
    source, _, checksums = small_mnist
    data_dir = tmp_path / "tfds"
    (data_dir / "keep.txt").parent.mkdir()
    (data_dir / "keep.txt").write_text("keep")

    examples = tfds_builder._examples

    def failing_examples(images, labels):
        yield from list(examples(images, labels))[:3]
        raise KeyboardInterrupt  # As if interrupted while writing.

    monkeypatch.setattr(tfds_builder, "_examples", failing_examples)
    with pytest.raises(KeyboardInterrupt):
        data.prepare(source, str(data_dir), checksums=checksums)
    assert _listing(data_dir) == ["keep.txt"]


def test_cli_prepare_refuses_wrong_file(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in data.MNIST_SHA256:  # Right names, wrong content.
        (source / name).write_bytes(_idx_bytes(np.zeros((2, 28, 28) if "images" in name else 2)))
    data_dir = tmp_path / "tfds"
    (data_dir / "keep.txt").parent.mkdir()
    (data_dir / "keep.txt").write_text("keep")
    command = [sys.executable, "-m", "mnist_jax.data", "prepare", str(source), "--data-dir"]
    result = subprocess.run([*command, str(data_dir)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "train-images-idx3-ubyte" in result.stderr and "SHA-256" in result.stderr
    assert "Traceback" not in result.stderr
    assert _listing(data_dir) == ["keep.txt"]


def test_prepare_force_rebuilds_a_damaged_dataset(small_mnist_as_canonical, tmp_path, capsys):
    source, arrays, _ = small_mnist_as_canonical
    data_dir = tmp_path / "tfds"
    target = data.prepare(source, str(data_dir))
    _flip_middle_byte(target / TRAIN_RECORDS)
    assert data.main(["prepare", str(source), "--data-dir", str(data_dir)]) == 0
    assert "--force rebuilds it" in capsys.readouterr().out
    with pytest.raises(datasets.DataFileError):
        data.load_mnist("train", data_dir=str(data_dir))
    assert data.main(["prepare", str(source), "--data-dir", str(data_dir), "--force"]) == 0
    assert "Prepared mnist" in capsys.readouterr().out
    _assert_is_small_mnist(data_dir, arrays)
    assert _listing(data_dir)[:2] == ["mnist", "mnist/3.0.1"]  # No temporary folder is left.


# --- Cache of decoded splits ---------------------------------------------------------------------

TRAIN_RECORDS = "mnist-train.array_record-00000-of-00001"


def _flip_middle_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{cache.CACHE_PREFIX}*.npz"))


@pytest.fixture
def prepared_small(small_mnist, tmp_path):
    """A data dir holding the small MNIST, its dataset folder and its arrays."""
    source, arrays, checksums = small_mnist
    target = data.prepare(source, str(tmp_path / "tfds"), checksums=checksums)
    return tmp_path / "tfds", target, arrays


def _forbid_decoding(monkeypatch):
    def fail(records, image_shape):
        raise AssertionError("decoded, not read from the cache")

    monkeypatch.setattr(tfds_builder, "decode_records", fail)


def test_a_load_caches_the_split_beside_the_dataset(prepared_small, monkeypatch):
    data_dir, target, arrays = prepared_small
    _assert_is_small_mnist(data_dir, arrays)
    assert len(_cache_files(target)) == 2  # One a split.
    assert not list(target.glob(".*"))  # No temporary file is left.
    _forbid_decoding(monkeypatch)
    _assert_is_small_mnist(data_dir, arrays)
    # tfds' own builder still reads the folder.
    assert len(tfds.data_source("mnist", split="test", data_dir=str(data_dir))) == 5


@pytest.mark.parametrize("damage", [_flip_middle_byte, _truncate, lambda p: p.write_bytes(b"")])
def test_a_damaged_cache_is_decoded_again(prepared_small, damage):
    data_dir, target, arrays = prepared_small
    _assert_is_small_mnist(data_dir, arrays)
    for path in _cache_files(target):
        damage(path)
    _assert_is_small_mnist(data_dir, arrays)
    for path in _cache_files(target):  # Rewritten whole.
        with np.load(path) as npz:
            assert set(npz.files) == {"images", "labels"}


def test_a_cache_is_not_served_for_changed_files(small_mnist, prepared_small, tmp_path):
    """The same file names and counts with other content (a second small MNIST) get their own
    arrays, not those cached for the first."""
    data_dir, target, arrays = prepared_small
    _assert_is_small_mnist(data_dir, arrays)
    other_arrays = {s: (255 - images, (labels + 1) % 10) for s, (images, labels) in arrays.items()}
    other_source = tmp_path / "other_source"
    other_source.mkdir()
    checksums = {}
    for split, (images_name, labels_name) in SPLIT_FILES.items():
        for name, array in zip((images_name, labels_name), other_arrays[split], strict=True):
            (other_source / name).write_bytes(raw := _idx_bytes(array))
            checksums[name] = hashlib.sha256(raw).hexdigest()
    other = data.prepare(other_source, str(tmp_path / "other"), checksums=checksums)
    for path in other.glob("mnist-*"):
        shutil.copy(path, target / path.name)
    _assert_is_small_mnist(data_dir, other_arrays)
    assert len(_cache_files(target)) == 4


@pytest.mark.parametrize("damage", [_flip_middle_byte, _truncate])
def test_a_damaged_dataset_file_is_a_file_error_not_a_stale_cache(prepared_small, damage):
    data_dir, target, arrays = prepared_small
    _assert_is_small_mnist(data_dir, arrays)
    damage(target / TRAIN_RECORDS)
    with pytest.raises(datasets.DataFileError) as info:
        data.load_mnist("train", data_dir=str(data_dir))
    _assert_damaged_message(str(info.value), target / TRAIN_RECORDS, data_dir)


def _assert_damaged_message(message: str, path: Path, data_dir: Path) -> None:
    assert message.startswith(f"{path}: damaged, truncated or unreadable (")
    command = (
        f"{commands.python()} -m mnist_jax.data prepare SOURCE_DIR --data-dir {data_dir} --force"
    )
    assert message.endswith(command) and "\n" not in message


def test_an_unwritable_cache_place_only_gives_one_note(prepared_small, monkeypatch, capfd):
    data_dir, target, arrays = prepared_small
    (data_dir / "a_file").write_text("")
    nowhere = [data_dir / "a_file" / "cache"]  # Cannot be created, even by root.
    monkeypatch.setattr(cache, "folders", lambda dataset_folder: nowhere)
    _assert_is_small_mnist(data_dir, arrays)
    _assert_is_small_mnist(data_dir, arrays)
    err = capfd.readouterr().err
    assert err.count("note: mnist_jax: no cache of decoded MNIST written") == 1
    assert str(nowhere[0]) in err and len(err.splitlines()) == 1
    assert _cache_files(target) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_dataset_is_cached_in_the_user_cache_dir_chmod(prepared_small, monkeypatch):
    data_dir, target, arrays = prepared_small
    monkeypatch.setenv("XDG_CACHE_HOME", str(data_dir.parent / "xdg"))
    target.chmod(0o555)
    try:
        _assert_is_small_mnist(data_dir, arrays)
    finally:
        target.chmod(0o755)
    assert _cache_files(target) == []
    assert len(_cache_files(data_dir.parent / "xdg" / "mnist_jax")) == 2


def test_the_user_cache_dir_follows_xdg(monkeypatch, tmp_path):
    folder = data.MNIST.folder(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.folders(folder) == [
        tmp_path / "mnist" / "3.0.1",
        tmp_path / "xdg" / "mnist_jax",
    ]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.folders(folder)[1] == tmp_path / "home" / ".cache" / "mnist_jax"


def test_mock_data_is_served_even_where_a_cache_is(prepared_small):
    data_dir, target, arrays = prepared_small
    _assert_is_small_mnist(data_dir, arrays)
    with tfds.testing.mock_data(num_examples=7):
        images, _ = data.load_mnist(split="train", data_dir=str(data_dir))
    assert images.shape == (7, 28, 28, 1)


def test_a_cached_split_is_served_without_tfds(prepared_small, monkeypatch):
    """The second load finds the files by name and reads the cache: mnist_tfds is not called."""
    data_dir, _, arrays = prepared_small
    _assert_is_small_mnist(data_dir, arrays)

    def no_tfds():
        raise AssertionError("went through tfds")

    monkeypatch.setattr(loading, "_tfds", no_tfds)
    _assert_is_small_mnist(data_dir, arrays)


def test_a_leftover_shard_only_sends_the_load_through_tfds(prepared_small, monkeypatch):
    """A file the dataset does not list changes the key found by name; tfds' list still meets
    the cache."""
    data_dir, target, arrays = prepared_small
    _assert_is_small_mnist(data_dir, arrays)
    shutil.copy(target / TRAIN_RECORDS, target / "mnist-train.array_record-00000-of-00002")
    assert loading._read_cache_by_file_names(data.MNIST, "train", str(data_dir)) is None
    _forbid_decoding(monkeypatch)
    _assert_is_small_mnist(data_dir, arrays)


def test_tfds_mock_data_is_detected():
    assert not loading._tfds_is_mocked()
    with tfds.testing.mock_data(num_examples=2):
        assert loading._tfds_is_mocked()
    with tfds.testing.mock_data(num_examples=2, as_data_source_fn=lambda *a, **k: []):
        assert loading._tfds_is_mocked()
    assert not loading._tfds_is_mocked()


@pytest.mark.parametrize("name", sorted(catalog.SPECS))
def test_names_kept_without_tfds_are_tfds_own(name, tmp_path):
    """The catalog spells out what tfds would tell it, so that a cache hit needs no tfds: the
    registered builder's name, version, folder, shape, classes and download address."""
    spec = catalog.SPECS[name]
    ours = tfds_builder.builder(spec, tmp_path)
    theirs = tfds.builder(name, data_dir=str(tmp_path))
    assert type(theirs) is not type(ours)  # tfds' own class stays registered
    assert spec.folder(tmp_path) == Path(theirs.data_dir) == Path(ours.data_dir)
    assert (spec.tfds_name, spec.version) == (theirs.name, str(theirs.version))
    features = theirs.info.features
    assert spec.image_shape == features["image"].shape
    assert spec.class_names == tuple(features["label"].names)
    assert set(spec.published.urls().values()) == set(type(theirs).url_infos)
    assert {f.rpartition("/")[2] for f in spec.published.urls()} == {
        info.filename for info in type(theirs).url_infos.values()
    }


# --- Finding MNIST: manual folder, download, none ------------------------------------------------


def test_load_imports_files_in_manual_dir(small_mnist_as_canonical, tmp_path):
    source, arrays, _ = small_mnist_as_canonical
    data_dir = tmp_path / "tfds"
    (data_dir / "downloads").mkdir(parents=True)
    source.rename(data_dir / "downloads" / "manual")
    _assert_is_small_mnist(data_dir, arrays)
    assert (data_dir / "mnist" / "3.0.1" / "dataset_info.json").is_file()


def test_load_names_missing_file_in_manual_dir(small_mnist_as_canonical, tmp_path):
    source, _, _ = small_mnist_as_canonical
    (source / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "tfds" / "downloads").mkdir(parents=True)
    source.rename(tmp_path / "tfds" / "downloads" / "manual")
    with pytest.raises(datasets.DataNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        data.load_mnist("train", data_dir=str(tmp_path / "tfds"))


def test_load_downloads_with_tfds(small_mnist_as_canonical, tmp_path, monkeypatch):
    source, arrays, _ = small_mnist_as_canonical
    for path in source.iterdir():  # A mirror serves .gz files.
        if path.suffix != ".gz":
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror = _mnist_at(f"http://127.0.0.1:{server.server_address[1]}/")
    # tfds knows the real mirror's checksums.
    monkeypatch.setattr(tfds_builder._Mnist, "url_infos", None)
    (tmp_path / "tfds").mkdir()  # A data dir that was named must exist.
    try:
        _assert_is_small_mnist(tmp_path / "tfds", arrays, mirror)
    finally:
        server.shutdown()


def _mnist_at(url: str) -> catalog.TfdsSpec:
    """MNIST, downloaded from `url`."""
    published = dataclasses.replace(data.MNIST.published, url=url)
    return dataclasses.replace(data.MNIST, published=published)


def _assert_not_found_message(message: str, data_dir: Path, url=data.MNIST.published.url):
    for name in data.MNIST_SHA256:
        assert f"{name}.gz" in message
    assert "TFDS_DATA_DIR" in message  # 1. a prepared data dir
    assert str(data_dir / "downloads" / "manual") in message  # 2. the files...
    assert "python -m mnist_jax.data prepare" in message  # ...or importing them
    assert url in message  # 3. the network


def test_no_network_error_is_fast_and_names_three_ways(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "network_error", lambda url: "offline (test)")
    start = time.perf_counter()
    with pytest.raises(datasets.DataNotFoundError) as info:
        data.load_mnist("train", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 5.0
    _assert_not_found_message(str(info.value), tmp_path)
    assert "offline (test)" in str(info.value)


def _offline(monkeypatch):
    monkeypatch.setattr(loading, "network_error", lambda url: "offline (test)")


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("how", ["argument", "TFDS_DATA_DIR"])
def test_a_missing_data_dir_is_named_and_not_created(tmp_path, monkeypatch, capfd, online, how):
    monkeypatch.setattr(loading, "network_error", lambda url: None if online else "offline (test)")
    missing = tmp_path / "tfsd"  # Mistyped.
    monkeypatch.setenv("TFDS_DATA_DIR", str(missing))
    with pytest.raises(datasets.DataNotFoundError) as info:
        data.load_mnist("train", data_dir=str(missing) if how == "argument" else None)
    message = str(info.value)
    assert message.startswith(f"dataset mnist is not in {missing}: the folder does not exist")
    _assert_not_found_message(message, missing)
    assert f"Create {missing} and connect to the network" in message
    assert ("answers now" in message) == online
    assert _listing(tmp_path) == []
    assert "Downloading" not in "".join(capfd.readouterr())


def test_offline_nothing_is_announced_or_created(tmp_path, monkeypatch, capfd):
    _offline(monkeypatch)
    with pytest.raises(datasets.DataNotFoundError, match="could not be fetched"):
        data.load_mnist("train", data_dir=str(tmp_path))
    out, err = capfd.readouterr()
    assert "Downloading" not in out + err
    assert _listing(tmp_path) == []


def test_offline_without_default_data_dir_creates_none(tmp_path, monkeypatch, capfd):
    _offline(monkeypatch)
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(datasets.DataNotFoundError) as info:
        data.load_mnist("test")
    _assert_not_found_message(str(info.value), tmp_path / "tensorflow_datasets")
    assert "Downloading" not in "".join(capfd.readouterr())
    assert _listing(tmp_path) == []


def test_silent_mirror_gives_the_error_within_the_timeout(tmp_path, monkeypatch):
    """A host that accepts connections but never answers: the probe's deadline holds."""
    silent = socket.create_server(("127.0.0.1", 0))
    mirror = _mnist_at(f"http://127.0.0.1:{silent.getsockname()[1]}/")
    monkeypatch.setattr(messages, "NETWORK_TIMEOUT_S", 0.5)
    start = time.perf_counter()
    try:
        with pytest.raises(datasets.DataNotFoundError) as info:
            loading.load(mirror, "test", data_dir=str(tmp_path))
    finally:
        silent.close()
    assert time.perf_counter() - start < 3.0
    _assert_not_found_message(str(info.value), tmp_path, mirror.published.url)


def test_network_probe_reports_refused_connection_at_once(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    start = time.perf_counter()
    assert loading.network_error(url) is not None
    assert time.perf_counter() - start < 1.0


# --- Real MNIST ----------------------------------------------------------------------------------


def _read_raw_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    images_name, labels_name = SPLIT_FILES[split]
    images = gzip.decompress((SHARED_MNIST / f"{images_name}.gz").read_bytes())[16:]
    labels = gzip.decompress((SHARED_MNIST / f"{labels_name}.gz").read_bytes())[8:]
    return np.frombuffer(images, np.uint8).reshape(-1, 28, 28, 1), np.frombuffer(labels, np.uint8)


@pytest.mark.parametrize("split", ["train", "test"])
def test_real_mnist_is_pixel_exact(mnist_data_dir, split):
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"no raw IDX files in {SHARED_MNIST} to compare with")
    images, labels = data.load_mnist(split, data_dir=mnist_data_dir)
    raw_images, raw_labels = _read_raw_split(split)
    assert images.shape == raw_images.shape and labels.shape == raw_labels.shape
    np.testing.assert_array_equal(
        _as_multiset(images, labels), _as_multiset(raw_images, raw_labels)
    )


def test_real_mnist_train_class_counts(mnist_data_dir):
    images, labels = data.load_mnist("train", data_dir=mnist_data_dir)
    assert images.shape == (60_000, 28, 28, 1)
    assert np.bincount(labels, minlength=10).tolist() == TRAIN_CLASS_COUNTS
    assert tfds.data_source("mnist", split="test", data_dir=mnist_data_dir).__len__() == 10_000


@pytest.mark.parametrize("damage", [_flip_middle_byte, _truncate])
def test_real_mnist_damaged_is_a_file_error(mnist_data_dir, tmp_path, damage):
    ignore = shutil.ignore_patterns(f"{cache.CACHE_PREFIX}*", ".*")
    shutil.copytree(Path(mnist_data_dir) / "mnist", tmp_path / "mnist", ignore=ignore)
    path = tmp_path / "mnist" / "3.0.1" / TRAIN_RECORDS
    damage(path)
    with pytest.raises(datasets.DataFileError) as info:
        data.load_mnist("train", data_dir=str(tmp_path))
    _assert_damaged_message(str(info.value), path, tmp_path)
    assert _cache_files(path.parent) == []


_LOAD_BOTH_SPLITS = """
import hashlib, json, sys
from mnist_jax import data
sums = {}
for split in ("train", "test"):
    images, labels = data.load_mnist(split, data_dir=sys.argv[1])
    sums[split] = [images.shape, hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()]
"""


@pytest.mark.slow  # two fresh processes, each loading all 70,000 real images
def test_real_mnist_warm_load_imports_no_tfds(mnist_data_dir, tmp_path):
    """A fresh process served from the cache imports no tensorflow_datasets (a second of start-up)
    and gets the arrays decoded by the first; tfds' mock data still wins over the cache there."""
    ignore = shutil.ignore_patterns(f"{cache.CACHE_PREFIX}*", ".*")
    shutil.copytree(Path(mnist_data_dir) / "mnist", tmp_path / "mnist", ignore=ignore)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("TFDS_DATA_DIR", None)
    cold = _run_python(  # Decodes and fills the cache, then reads it.
        _LOAD_BOTH_SPLITS
        + "first = sums\n"
        + "assert 'tensorflow_datasets' in sys.modules, 'decoded without tfds?'\n"
        + _LOAD_BOTH_SPLITS
        + "assert sums == first\n"
        + "print(json.dumps(sums))\n",
        tmp_path,
        env,
    )
    assert len(_cache_files(tmp_path / "mnist" / "3.0.1")) == 2
    warm = _run_python(
        _LOAD_BOTH_SPLITS
        + "assert 'tensorflow_datasets' not in sys.modules, 'tfds imported'\n"
        + "assert data.prepare(sys.argv[1] + '/no_source', sys.argv[1]).is_dir()\n"
        + "assert 'tensorflow_datasets' not in sys.modules, 'tfds imported by prepare'\n"
        + "print(json.dumps(sums))\n"
        + "import tensorflow_datasets as tfds\n"
        + "with tfds.testing.mock_data(num_examples=3):\n"
        + "    assert data.load_mnist(split='test', data_dir=sys.argv[1])[0].shape[0] == 3\n",
        tmp_path,
        env,
    )
    assert warm == cold
    assert warm["train"][0] == [60_000, 28, 28, 1] and warm["test"][0] == [10_000, 28, 28, 1]


def _run_python(code: str, data_dir: Path, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])
