"""The validation split: a fixed choice of training examples, whatever data_seed says, reported
under `val_` names beside the test set's `test_` ones (JSON, CSV, TensorBoard, progress line)."""

import csv
import json

import numpy as np
import tensorflow_datasets as tfds
from mock_run import argv_with

from experiments import softmax
from mnist_jax import cli, holdout
from tests.test_experiments import scalars


def test_the_split_is_fixed_sorted_and_disjoint_from_training():
    chosen = holdout.indices(60_000, 5_000)
    assert np.array_equal(chosen, holdout.indices(60_000, 5_000))
    assert np.array_equal(chosen, np.unique(chosen)) and len(chosen) == 5_000
    x, y = np.arange(100.0), np.arange(100) * 2
    (train_x, train_y), (val_x, val_y) = holdout.split((x, y), 30)
    assert len(train_x) == 70 and len(val_x) == 30
    assert set(train_x) | set(val_x) == set(x) and not set(train_x) & set(val_x)
    assert np.array_equal(val_y, val_x * 2)  # images and labels held out together
    assert np.array_equal(val_x, holdout.indices(100, 30))
    assert holdout.split((x, y), 0) == ((x, y), None)


def train_mock(tmp_path, *args):
    defaults = ["--logdir", str(tmp_path / "logs"), "--json", str(tmp_path / "out.json")]
    argv = argv_with(["--batch-size", "20", "--steps", "4", *defaults], args)
    with tfds.testing.mock_data(num_examples=120):
        result = cli.main(softmax.CONFIG, argv)
    return result, json.loads((tmp_path / "out.json").read_text())


def test_validation_and_test_figures_are_named_apart_everywhere_mock_data(tmp_path, capsys):
    result, saved = train_mock(tmp_path, "--csv", str(tmp_path / "runs.csv"), "val_split=40")
    (epoch,) = saved["runs"][0]["epochs"]
    assert {"val_loss", "val_accuracy", "test_loss", "test_accuracy"} <= set(epoch)
    assert epoch["val_loss"] != epoch["test_loss"]  # 40 held-out images, not the test set
    assert saved["validation"] == holdout.record(120, 40)
    assert saved["runs"][0]["config"]["val_split"] == 40
    (row,) = csv.DictReader((tmp_path / "runs.csv").open())
    assert float(row["val_loss"]) == epoch["val_loss"]
    assert float(row["test_loss"]) == epoch["test_loss"]
    run_dir = result.runs[0].run_dir
    validation, test = scalars(run_dir + "/validation"), scalars(run_dir + "/test")
    assert validation["epoch_loss"] == [(1, np.float32(epoch["val_loss"]))]
    assert test["epoch_loss"] == [(1, np.float32(epoch["test_loss"]))]
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch 1/1"))
    assert f"val_loss {epoch['val_loss']:.4f}" in line
    assert f"test_loss {epoch['test_loss']:.4f}" in line
    _, other_order = train_mock(tmp_path / "2", "val_split=40", "data_seed=1")
    assert other_order["validation"] == saved["validation"]  # the same images held out


def test_without_a_split_only_the_test_set_is_reported_mock_data(tmp_path):
    _, saved = train_mock(tmp_path, "--no-logs")
    (epoch,) = saved["runs"][0]["epochs"]
    assert "val_loss" not in epoch and epoch["test_loss"] is not None
    assert saved["validation"] is None
