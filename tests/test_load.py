"""`mnist_jax.load(CHECKPOINT_DIR)`: single runs, sweeps over several groups, a 5-class dataset of
one's own; `evaluate_checkpoint`'s runs carry their parameters; a model of one's own module is
evaluated from another working directory (the module imported from the file it was loaded
from)."""

import json
import os
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from trained_runs import mock_run, mock_test_set

import mnist_jax
from mnist_jax import evaluate, experiment, models
from mnist_jax.config import Config
from mnist_jax.datasets import DATASETS, from_arrays

RELU = Config(name="relu", model_name="mlp", model={"hidden": [16]}, epochs=1)


def accuracy(p_NxK: np.ndarray, labels_N: np.ndarray) -> float:
    return float((p_NxK.argmax(-1) == labels_N).mean())


def assert_same(params_a, params_b) -> None:
    assert jax.tree.structure(params_a) == jax.tree.structure(params_b)
    for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_a_single_run_predicts_as_it_was_evaluated_mock_data(tmp_path):
    result = mock_run(tmp_path, RELU)
    trained = mnist_jax.load(str(tmp_path / "ckpt"))
    (member,) = trained.members
    images, labels = mock_test_set()
    p_NxK = member.predict(images)
    assert p_NxK.shape == (len(images), 10) and np.allclose(p_NxK.sum(-1), 1, atol=1e-5)
    assert accuracy(p_NxK, labels) == pytest.approx(result.runs[0].test_accuracy, abs=1e-6)
    assert member.config == result.runs[0].member.config and member.epoch == 1
    assert trained.class_names == tuple(str(d) for d in range(10))
    assert_same(member.params, result.runs[0].params)


def test_load_a_sweep_of_two_groups_gives_every_member_mock_data(tmp_path):
    result = mock_run(tmp_path, RELU, "model.hidden=[16],[8]", "--seed", "0,1")
    trained = mnist_jax.load(str(tmp_path / "ckpt"))
    assert [m.index for m in trained.members] == [0, 1, 2, 3]
    assert [m.hparams for m in trained.members] == [r.hparams for r in result.runs]
    assert [m.params["dense_1"]["kernel"].shape[1] for m in trained.members] == [16, 16, 8, 8]
    images, labels = mock_test_set()
    each = [m.predict(images) for m in trained.members]
    for p_NxK, run in zip(each, result.runs, strict=True):
        assert accuracy(p_NxK, labels) == pytest.approx(run.test_accuracy, abs=1e-6)
    np.testing.assert_allclose(trained.predict(images), np.mean(each, 0), rtol=1e-6)


def test_evaluate_checkpoint_runs_carry_their_parameters_mock_data(tmp_path):
    mock_run(tmp_path, RELU, "--seed", "0,1")
    trained = mnist_jax.load(str(tmp_path / "ckpt"))
    with tfds.testing.mock_data(num_examples=200):
        result = evaluate.evaluate_checkpoint(str(tmp_path / "ckpt"))
    for run, member in zip(result.runs, trained.members, strict=True):
        assert run.params is not None
        assert_same(run.params, member.params)


def five_blobs(n: int, seed: int):
    """8x8 one-channel images of 5 classes: class c lights pixel (c + 1, 4)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    images = rng.normal(0.0, 0.3, (n, 8, 8)).astype(np.float32)
    images[np.arange(n), labels + 1, 4] += 3.0
    return images, labels


@pytest.fixture
def five_classes():
    DATASETS.register("five_blobs", from_arrays(five_blobs(200, 0), five_blobs(100, 1), "abcde"))
    yield
    del DATASETS.entries["five_blobs"]


def test_load_a_five_class_dataset_of_ones_own(five_classes, tmp_path):
    config = Config(
        name="blobs", model_name="mlp", model={"hidden": [16]}, dataset="five_blobs", lr=0.01,
        epochs=3, batch_size=20,
    )  # fmt: skip
    result = experiment.train_and_evaluate(
        config, logdir=None, checkpoint_dir=str(tmp_path / "ckpt")
    )
    (member,) = mnist_jax.load(str(tmp_path / "ckpt")).members
    images, labels = five_blobs(100, 1)
    p_NxK = member.predict(images)  # (N, H, W): the one channel added
    assert p_NxK.shape == (100, 5) and member.dataset.class_names == tuple("abcde")
    assert accuracy(p_NxK, labels) == pytest.approx(result.runs[0].test_accuracy, abs=1e-6)
    assert result.runs[0].test_accuracy > 0.9  # the classes are far apart


OWN_MODULE = '''
"""A module of one's own registering its own model."""

import flax.linen as nn

from mnist_jax import models


@models.MODELS.register("own_tiny")
class OwnTiny(nn.Module):
    width: int = 8
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x_BxHxWxC, *, train=False):
        h = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        return nn.Dense(10)(nn.relu(nn.Dense(self.width)(h)))
'''


def test_a_checkpoint_of_ones_own_model_evaluates_from_another_working_directory_mock_data(
    tmp_path, monkeypatch, capsys
):
    own = tmp_path / "own"
    own.mkdir()
    (own / "own_tiny_model.py").write_text(OWN_MODULE)
    monkeypatch.chdir(own)  # as `python -m own_experiment` run from its own folder
    monkeypatch.syspath_prepend(str(own))
    import own_tiny_model  # noqa: F401

    config = Config(name="own", model_name="own_tiny", epochs=1)
    result = mock_run(tmp_path, config)
    # Another process, elsewhere: neither the module nor its folder is known.
    del sys.modules["own_tiny_model"], models.MODELS.entries["own_tiny"]
    sys.path.remove(str(own))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with tfds.testing.mock_data(num_examples=200):
        evaluated = evaluate.main([str(tmp_path / "ckpt")])
    err = capsys.readouterr().err
    assert f"imported own_tiny_model from {own / 'own_tiny_model.py'}" in err
    assert err.count("\n") == 1
    assert evaluated.runs[0].test_accuracy == result.runs[0].test_accuracy
    del models.MODELS.entries["own_tiny"], sys.modules["own_tiny_model"]


def test_a_checkpoint_whose_module_is_found_nowhere_is_refused_in_one_line(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    member = {"config": Config("x", "mlp", epochs=1).to_json(), "hparams": {}}
    record = {"name": "x", "members": [member], "groups": [[0, 1]], "max_members": 1,
              "modules": ["gone_module"], "module_files": {}}  # fmt: skip
    (ckpt / "run.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit) as info:
        evaluate.main([str(ckpt)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "cannot import gone_module" in err and "PYTHONPATH" in err


def test_load_expands_the_home_folder(tmp_path, monkeypatch):
    mock_run(tmp_path, RELU)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert len(mnist_jax.load("~/ckpt").members) == 1
    assert os.path.isdir(tmp_path / "ckpt")


def test_resume_imports_the_runs_own_module_from_its_file_mock_data(tmp_path, monkeypatch, capsys):
    """A run of an experiment with `model=own_tiny`, registered by a module the first process
    imported and the resuming one does not know."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "own_tiny_model.py").write_text(OWN_MODULE)
    monkeypatch.syspath_prepend(str(own))
    import own_tiny_model  # noqa: F401

    mock_run(tmp_path, RELU, "model=own_tiny")
    del sys.modules["own_tiny_model"], models.MODELS.entries["own_tiny"]
    sys.path.remove(str(own))
    resumed = mock_run(tmp_path, RELU, "model=own_tiny", "--resume", "--epochs", "2")
    assert "imported own_tiny_model from" in capsys.readouterr().err
    assert len(resumed.runs[0].history) == 2
    del models.MODELS.entries["own_tiny"], sys.modules["own_tiny_model"]


EXTRA_DATASET = '''
"""Registers `noise_digits`: MNIST-shaped random images, to evaluate a checkpoint on."""

import numpy as np

from mnist_jax.datasets import DATASETS, from_arrays

rng = np.random.default_rng(0)
split = (rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 10, 50))
DATASETS.register("noise_digits", from_arrays(split, split, [str(d) for d in range(10)]))
'''


def test_evaluate_imports_a_module_that_registers_a_dataset_to_evaluate_on_mock_data(
    tmp_path, capsys
):
    mock_run(tmp_path, RELU)
    (tmp_path / "extra_digits.py").write_text(EXTRA_DATASET)
    result = evaluate.main(
        [str(tmp_path / "ckpt"), "--import", str(tmp_path / "extra_digits.py"),
         "--dataset", "noise_digits"]
    )  # fmt: skip
    assert "test set of noise_digits (trained on mnist)" in capsys.readouterr().out
    assert 0 <= result.runs[0].test_accuracy <= 1
    with pytest.raises(SystemExit) as info:
        evaluate.main([str(tmp_path / "ckpt"), "--import", "no_such_module_here"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "--import no_such_module_here: cannot import it" in err
    del DATASETS.entries["noise_digits"], sys.modules["extra_digits"]
