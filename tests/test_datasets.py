"""Datasets by name: tfds' datasets on tfds mock data (random images) and on small files in their
published format, a dataset of one's own registered from numpy arrays, `dataset=` overrides and
sweeps, checkpoints evaluated on their own dataset, and the messages that name each dataset."""

import dataclasses
import errno
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import five_layer_relu_dropout, softmax
from mnist_jax import checks, commands, data, datasets, evaluate, experiment, overrides, sweep
from mnist_jax.config import ConfigError
from mnist_jax.datasets import cache, catalog, loading, tfds_builder

TFDS_NAMES = sorted(catalog.SPECS)
SIZES = {"train": 12, "test": 5}


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _offline(monkeypatch):
    monkeypatch.setattr(loading, "network_error", lambda url: "offline (test)")


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _small_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        split: (rng.integers(0, 256, (n, 28, 28), np.uint8), rng.integers(0, 10, n, np.uint8))
        for split, n in SIZES.items()
    }


def write_published(spec: catalog.TfdsSpec, folder: Path, arrays) -> dict[str, str]:
    """Small files in `spec`'s published format (gzip IDX files, or EMNIST's zip of them) in
    `folder`; their SHA-256s as `files.read_splits` checks them."""
    folder.mkdir(parents=True, exist_ok=True)
    published, members = spec.published, {}
    for split, names in published.split_files.items():
        for name, array in zip(names, arrays[split], strict=True):
            members[name] = gzip.compress(_idx_bytes(array), mtime=0)
    if published.archive:
        with zipfile.ZipFile(folder / published.archive, "w") as archive:
            for name, content in members.items():
                archive.writestr(name, content)
        return {published.archive: hashlib.sha256((folder / published.archive).read_bytes())
                .hexdigest()}  # fmt: skip
    for name, content in members.items():
        (folder / name).write_bytes(content)
    if published.content_sha256:
        return {n.removesuffix(".gz"): hashlib.sha256(gzip.decompress(c)).hexdigest()
                for n, c in members.items()}  # fmt: skip
    return {name: hashlib.sha256(content).hexdigest() for name, content in members.items()}


def _sorted_examples(images, labels):
    """Examples as sorted bytes rows: equal for the same examples in any order."""
    rows = [
        bytes([int(label)]) + image.tobytes() for image, label in zip(images, labels, strict=True)
    ]
    return sorted(rows)


def prepared(name: str, tmp_path: Path, arrays=None):
    """`name` prepared from small published files into `tmp_path/tfds`; (data dir, arrays)."""
    spec, arrays = catalog.SPECS[name], arrays or _small_arrays()
    checksums = write_published(spec, tmp_path / f"source-{name.replace('/', '-')}", arrays)
    loading.prepare(spec, tmp_path / f"source-{name.replace('/', '-')}", str(tmp_path / "tfds"),
                    checksums)  # fmt: skip
    return tmp_path / "tfds", arrays


# --- tfds' datasets: mock data, published files, checksums ---------------------------------------


@pytest.mark.parametrize("name", TFDS_NAMES)
def test_every_tfds_dataset_loads_through_tfds_on_mock_data(name, tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        for split in ("train", "test"):
            images, labels = datasets.load(name, split, data_dir=str(tmp_path))
            assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
            assert labels.dtype == np.int32 and 0 <= labels.min() <= labels.max() < 10
    assert _listing(tmp_path) == []
    dataset = datasets.get(name)
    assert (dataset.image_shape, dataset.num_classes) == ((28, 28, 1), 10)


@pytest.mark.parametrize("name", [n for n in TFDS_NAMES if n != "mnist"])  # mnist: test_data.py
def test_prepare_from_published_files_then_load(name, tmp_path):
    data_dir, arrays = prepared(name, tmp_path)
    spec = catalog.SPECS[name]
    assert spec.is_prepared(data_dir) and data.is_prepared(str(data_dir), name)
    for split, (images, labels) in arrays.items():
        got_images, got_labels = datasets.load(name, split, data_dir=str(data_dir))
        assert _sorted_examples(got_images, got_labels) == _sorted_examples(images, labels)
        # tfds' own registered builder reads what was prepared.
        assert len(tfds.data_source(name, split=split, data_dir=str(data_dir))) == SIZES[split]
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("name", [n for n in TFDS_NAMES if n != "mnist"])
def test_prepare_checks_tfds_registered_checksums(name, tmp_path):
    spec = catalog.SPECS[name]
    write_published(spec, tmp_path / "source", _small_arrays())  # not the real files
    registered = {info.filename: info.checksum for info in tfds.builder_cls(
        spec.tfds_name).url_infos.values()}  # fmt: skip
    assert tfds_builder.checksums(spec) == registered
    first = spec.published.source_names()[0]
    expected = f"{first}: SHA-256 .* expected {registered[first]}"
    with pytest.raises(datasets.DataFileError, match=expected):
        loading.prepare(spec, tmp_path / "source", str(tmp_path / "tfds"))
    assert _listing(tmp_path / "tfds") == []


def test_a_killed_prepares_temporary_folder_goes_with_the_next_prepare(tmp_path):
    spec = catalog.SPECS["kmnist"]
    (tmp_path / "tfds").mkdir()
    dead = tmp_path / "tfds" / f"{spec.prepare_prefix()}999999999-abc"
    older = tmp_path / "tfds" / f"{spec.prepare_prefix()}k2jx8_ab"  # before the pid was named
    running = tmp_path / "tfds" / f"{spec.prepare_prefix()}{os.getpid()}-xyz"
    for folder in (dead, older, running):
        (folder / "kmnist").mkdir(parents=True)
    prepared("kmnist", tmp_path)
    assert not dead.exists() and not older.exists() and running.exists()


def test_a_wrong_cache_is_ignored_and_rewritten(tmp_path):
    """A cache entry of another size, or with labels out of range, is never served (#19)."""
    data_dir, arrays = prepared("fashion_mnist", tmp_path)
    images, labels = datasets.load("fashion_mnist", "train", data_dir=str(data_dir))
    folder = catalog.SPECS["fashion_mnist"].folder(data_dir)
    (entry,) = [p for p in folder.glob(f"{cache.CACHE_PREFIX}*") if p.stat().st_size > 9000]
    for wrong in (
        {"images": np.zeros((100, 28, 28, 1), np.uint8), "labels": np.zeros(100, np.int32)},
        {"images": images, "labels": labels + 10},
    ):
        with open(entry, "wb") as f:
            np.savez(f, **wrong)
        again, again_labels = datasets.load("fashion_mnist", "train", data_dir=str(data_dir))
        np.testing.assert_array_equal(again, images)
        np.testing.assert_array_equal(again_labels, labels)
        with np.load(entry) as npz:  # rewritten
            np.testing.assert_array_equal(npz["labels"], labels)


# --- Messages: each names its dataset, its files and what to type --------------------------------


@pytest.mark.parametrize("name", TFDS_NAMES)
def test_the_missing_files_message_names_the_dataset(name, tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(datasets.DataNotFoundError) as info:
        datasets.load(name, "train", data_dir=str(tmp_path))
    message, spec = str(info.value), catalog.SPECS[name]
    assert message.startswith(f"dataset {name} is not in {tmp_path}: it could not be fetched")
    for file in spec.published.source_names():
        assert file in message
    assert str(tmp_path / "downloads" / "manual") in message and "TFDS_DATA_DIR" in message
    assert spec.published.url in message and "offline (test)" in message
    option = "" if name == "mnist" else f" --dataset {name}"
    assert f"{commands.python()} -m mnist_jax.data prepare SOURCE_DIR{option} --data-dir" in message
    assert len(message.splitlines()) == 4 and _listing(tmp_path) == []


def test_a_data_dir_holding_the_published_files_says_what_to_type(tmp_path, monkeypatch):
    _offline(monkeypatch)
    write_published(catalog.SPECS["mnist"], tmp_path / "idx", _small_arrays())
    given = os.path.relpath(tmp_path / "idx")
    with pytest.raises(datasets.DataNotFoundError) as info:
        data.load_mnist("train", data_dir=given)
    message = str(info.value)
    assert f"--data-dir {given} holds mnist's published files" in message
    assert f"{commands.python()} -m mnist_jax.data prepare {given} " in message
    assert "\n" not in message


def test_a_data_dir_inside_a_tfds_data_dir_names_the_right_one(tmp_path, monkeypatch):
    _offline(monkeypatch)
    data_dir, _ = prepared("mnist", tmp_path)
    for inside in (data_dir / "mnist", data_dir / "mnist" / "3.0.1"):
        with pytest.raises(datasets.DataNotFoundError) as info:
            data.load_mnist("test", data_dir=str(inside))
        assert str(info.value) == (
            f"--data-dir {inside} is inside the tfds data dir that holds mnist: use --data-dir"
            f" {data_dir} (or TFDS_DATA_DIR={data_dir})"
        )


# --- The prepare command: exit statuses, one line --------------------------------------------


def _prepare(*argv) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "mnist_jax.data", "prepare", *map(str, argv)],
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout + result.stderr


def test_prepare_from_a_missing_folder_is_bad_input_even_when_prepared(tmp_path):
    data_dir, _ = prepared("kmnist", tmp_path)
    status, out = _prepare(tmp_path / "sorce", "--dataset", "kmnist", "--data-dir", data_dir)
    assert status == 2 and "already prepared" not in out
    assert out.count("\n") == 1 and f"{tmp_path / 'sorce'}: no such folder" in out


def test_prepare_into_a_file_is_refused(tmp_path):
    write_published(catalog.SPECS["mnist"], tmp_path / "idx", _small_arrays())
    (tmp_path / "file").write_text("")
    for data_dir in (tmp_path / "file", tmp_path / "file" / "tfds"):
        status, out = _prepare(tmp_path / "idx", "--data-dir", data_dir)
        assert status == 2 and out.count("\n") == 1, out
        assert f"{tmp_path / 'file'} is a file" in out


@pytest.mark.parametrize(
    ("code", "status", "fix"),
    [(errno.ENOSPC, 1, "free some space or choose"), (errno.EROFS, 2, "choose")],
)
def test_prepare_that_cannot_write_is_one_line(tmp_path, monkeypatch, capsys, code, status, fix):
    """A full disk is a fault (exit 1); a read-only file system bad input (exit 2)."""
    checksums = write_published(catalog.SPECS["mnist"], tmp_path / "idx", _small_arrays())
    for name, digest in checksums.items():  # the small files stand in for the canonical ones
        monkeypatch.setitem(catalog.MNIST_SHA256, name, digest)

    def failing(*args):
        raise OSError(code, os.strerror(code), str(tmp_path / "tfds"))

    monkeypatch.setattr(tfds_builder, "build", failing)
    with pytest.raises(SystemExit) as info:
        data.main(["prepare", str(tmp_path / "idx"), "--data-dir", str(tmp_path / "tfds")])
    err = capsys.readouterr().err
    assert info.value.code == status and err.count("\n") == 1
    assert os.strerror(code) in err and f"nothing was prepared: {fix} another --data-dir" in err


# --- The dataset key: overrides, sweeps, runs --------------------------------------------------


def expand(config, *args):
    return sweep.expand(config, overrides.parse_all(args))


def test_the_dataset_key_sets_one_and_is_named_in_the_run():
    (member,) = expand(five_layer_relu_dropout.CONFIG, "dataset=fashion_mnist")
    assert member.config.dataset == "fashion_mnist"
    assert member.hparams == {"dataset": "fashion_mnist"}  # not MNIST: shown though not swept
    assert sweep.run_name(member) == "dataset_fashion_mnist-lr_0.001-seed_0"
    (emnist,) = expand(five_layer_relu_dropout.CONFIG, "dataset=emnist/digits")
    assert sweep.run_name(emnist) == "dataset_emnist_digits-lr_0.001-seed_0"  # one folder
    (plain,) = expand(five_layer_relu_dropout.CONFIG)
    assert (plain.config.dataset, plain.hparams) == ("mnist", {})


def test_a_dataset_sweep_makes_one_group_a_dataset():
    given = overrides.parse_all(["dataset=mnist,fashion_mnist", "model.dropout_rate=0,0.25"])
    members = sweep.expand(five_layer_relu_dropout.CONFIG, given)
    assert [m.hparams["dataset"] for m in members] == ["mnist"] * 2 + ["fashion_mnist"] * 2
    assert [len(g.members) for g in sweep.groups(members)] == [2, 2]  # rates are data, datasets not
    assert sweep.shown_keys(given, members) == ["dataset", "model.dropout_rate"]


def test_an_unknown_dataset_is_refused_naming_the_nearest():
    with pytest.raises(
        ConfigError, match="unknown dataset 'fashion_mnsit'; did you mean 'fashion_mnist'"
    ):
        expand(softmax.CONFIG, "dataset=fashion_mnsit")


def test_a_dataset_sweep_trains_and_reports_each_on_mock_data(tmp_path):
    outputs = {"json_path": str(tmp_path / "out.json"), "csv_path": str(tmp_path / "out.csv")}
    with tfds.testing.mock_data(num_examples=60):
        result = experiment.train_and_evaluate(
            softmax.CONFIG,
            ["dataset=mnist,kmnist", "steps=3", "batch_size=20"],
            logdir=str(tmp_path / "logs"),
            **outputs,
        )
    assert [(r.group, r.hparams["dataset"]) for r in result.runs] == [(0, "mnist"), (1, "kmnist")]
    assert sorted(p.name for p in (tmp_path / "logs" / "softmax").iterdir() if p.is_dir()) == [
        "dataset_kmnist-lr_0.5-seed_0",
        "dataset_mnist-lr_0.5-seed_0",
    ]
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["swept"] == ["dataset"]
    assert [r["config"]["dataset"] for r in saved["runs"]] == ["mnist", "kmnist"]
    header, *rows = (tmp_path / "out.csv").read_text().splitlines()
    assert header.startswith("dataset,") and sorted(r.split(",")[0] for r in rows) == [
        "kmnist",
        "mnist",
    ]
    from mnist_jax.tables import summary_table

    table = summary_table(result).splitlines()
    assert table[1].split()[:2] == ["dataset", "lr"] and "kmnist" in table[2] + table[3]


# --- A dataset of one's own ---------------------------------------------------------------------

OWN_MODULE = '''
"""A dataset of one's own: 3 classes of 8x8 float images, made with numpy."""
import numpy as np
from mnist_jax import cli
from mnist_jax.config import Config
from mnist_jax.datasets import DATASETS, from_arrays


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.normal(0.0, 0.3, (n, 8, 8)).astype(np.float32)
    images[np.arange(n), 2 * labels + 1, 4] += 3.0  # class c lights pixel (2c + 1, 4)
    return images, labels


DATASETS.register("blobs", from_arrays(blobs(120, 0), blobs(60, 1), ["low", "mid", "high"]))
CONFIG = Config(name="blobs_mlp", model_name="mlp", dataset="blobs", model={"hidden": [16]},
                lr=0.01, epochs=2, batch_size=20)

if __name__ == "__main__":
    cli.main(CONFIG)
'''


@pytest.fixture(scope="module")
def own_module(tmp_path_factory):
    """`my_blobs`, a module of one's own registering dataset `blobs`, importable."""
    folder = tmp_path_factory.mktemp("own")
    (folder / "my_blobs.py").write_text(OWN_MODULE)
    sys.path.insert(0, str(folder))
    import my_blobs

    yield my_blobs, folder
    sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def own_checkpoint(own_module, tmp_path_factory):
    """`blobs_mlp` trained two epochs, checkpointed; (result, checkpoint dir)."""
    workdir = tmp_path_factory.mktemp("own_run")
    result = experiment.train_and_evaluate(
        own_module[0].CONFIG, logdir=str(workdir / "logs"), checkpoint_dir=str(workdir / "ckpt")
    )
    return result, str(workdir / "ckpt")


def test_a_dataset_of_ones_own_trains_and_is_recorded(own_checkpoint):
    result, ckpt = own_checkpoint
    (run,) = result.runs
    assert run.hparams == {"dataset": "blobs"} and run.run_dir.endswith(
        "dataset_blobs-lr_0.01-seed_0"
    )
    assert run.test_accuracy > 0.9  # measured 0.9667 (58 of 60): the classes are far apart
    record = json.loads((Path(ckpt) / "run.json").read_text())
    assert record["datasets"] == {"blobs": "my_blobs"} and "my_blobs" in record["modules"]
    config = json.loads((Path(run.run_dir) / "config.json").read_text())
    assert config["dataset"] == "blobs"


def test_a_checkpoint_is_evaluated_on_its_own_dataset(own_checkpoint, capsys):
    result, ckpt = own_checkpoint
    evaluated = evaluate.main([ckpt])
    assert evaluated.runs[0].test_accuracy == result.runs[0].test_accuracy
    assert "test set of blobs" in capsys.readouterr().out


def test_another_dataset_of_other_shape_is_refused_in_one_line(own_checkpoint, capsys):
    _, ckpt = own_checkpoint
    with pytest.raises(SystemExit) as info:
        evaluate.main([ckpt, "--dataset", "fashion_mnist"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "--dataset fashion_mnist: its images are (28, 28, 1) in 10 classes" in err
    assert "trained on blobs, (8, 8, 1) in 3 classes" in err


@pytest.mark.slow  # a fresh process: jax's imports and a compile
def test_a_checkpoint_of_ones_own_dataset_is_evaluated_in_a_fresh_process(
    own_module, own_checkpoint
):
    result, ckpt = own_checkpoint
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(own_module[1]), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "mnist_jax.evaluate", ckpt], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "test set of blobs" in done.stdout
    assert f"{result.runs[0].test_accuracy:.4f}" in done.stdout


def test_a_model_without_num_classes_is_refused_for_other_classes(own_module, tmp_path):
    import flax.linen as nn

    from mnist_jax import models

    @models.MODELS.register("ten_outputs")
    class TenOutputs(nn.Module):
        dtype: str = "float32"

        @nn.compact
        def __call__(self, x, *, train=False):
            return nn.Dense(10)(x.reshape(x.shape[0], -1))

    config = dataclasses.replace(own_module[0].CONFIG, model_name="ten_outputs", model={})
    with pytest.raises(
        ConfigError, match="ten_outputs gives outputs of shape \\(10,\\) for dataset blobs's 3"
    ):
        experiment.train_and_evaluate(config, logdir=str(tmp_path / "logs"))
    assert not (tmp_path / "logs").exists()


def test_arrays_that_do_not_fit_the_description_are_refused():
    images = np.zeros((4, 2, 2, 1), np.uint8)
    datasets.DATASETS.register("wrong_labels", datasets.from_arrays(
        (images, [0, 1, 2, 3]), (images, [0, 0, 0, 0]), ["a", "b"]))  # fmt: skip
    with pytest.raises(datasets.DataError, match="wrong_labels, split train: labels from 0 to 3"):
        datasets.load("wrong_labels", "train")


# --- Evaluation never falls back to another dataset -------------------------------------------


@pytest.fixture(scope="module")
def kmnist_checkpoint(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kmnist_run")
    with tfds.testing.mock_data(num_examples=60):
        experiment.train_and_evaluate(
            softmax.CONFIG,
            ["dataset=kmnist", "steps=3", "batch_size=20"],
            logdir=None,
            checkpoint_dir=str(workdir / "ckpt"),
        )
    return str(workdir / "ckpt")


def test_evaluate_stops_when_the_recorded_dataset_is_missing_even_if_mnist_is_there(
    kmnist_checkpoint, tmp_path, monkeypatch, capsys
):
    _offline(monkeypatch)
    checksums = write_published(catalog.SPECS["mnist"], tmp_path / "idx", _small_arrays())
    data.prepare(tmp_path / "idx", str(tmp_path / "tfds"), checksums=checksums)
    with pytest.raises(SystemExit) as info:
        evaluate.main([kmnist_checkpoint, "--data-dir", str(tmp_path / "tfds")])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith(
        f"python -m mnist_jax.evaluate: error: dataset kmnist is not in {tmp_path / 'tfds'}"
    )


def test_a_dataset_of_the_same_shape_and_classes_is_a_transfer_test_on_mock_data(
    kmnist_checkpoint, capsys
):
    with tfds.testing.mock_data(num_examples=30):
        result = evaluate.main([kmnist_checkpoint, "--dataset", "fashion_mnist"])
    assert len(result.runs) == 1
    assert "test set of fashion_mnist (trained on kmnist)" in capsys.readouterr().out


def test_checking_a_models_outputs_measures_no_convolution(monkeypatch):
    """The check before training traces shapes only: an `auto` convolution is not timed."""
    from experiments import gorner_cnn
    from mnist_jax import conv

    def measure(layer):
        raise AssertionError(f"measured {layer}")

    monkeypatch.setattr(conv, "_measure", measure)
    (member,) = expand(gorner_cnn.CONFIG, "dataset=kmnist")
    checks.check_model(member.config, (28, 28, 1))
