"""The experiments that start from checkpoints, on tfds mock data (random images): permuted MNIST
trains its second phase from the first's checkpoint; pruning keeps the pruned weights at zero
through fine-tuning."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import mnist_jax
from experiments import permuted_mnist, prune_finetune

SHORT = ["steps=6", "batch_size=20"]


def test_permuted_mnist_starts_its_second_phase_from_the_first_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=120):
        phases = permuted_mnist.run(str(tmp_path), overrides=SHORT, quiet=True)
        images, _ = mnist_jax.datasets.load("mnist", "test")
        permuted, _ = mnist_jax.datasets.load("permuted_mnist", "test")
    assert [p.trained_on for p in phases] == ["mnist", "permuted_mnist"]
    assert all(set(p.accuracy) == {"mnist", "permuted_mnist"} for p in phases)
    record = json.loads((Path(phases[1].checkpoint_dir) / "run.json").read_text())
    (member,) = record["members"]
    assert member["config"]["init_from"] == phases[0].checkpoint_dir
    assert record["modules"] == ["experiments.permuted_mnist"]
    assert sorted(permuted[0].ravel()) == sorted(images[0].ravel())  # the same pixels, moved
    assert not np.array_equal(permuted[0], images[0])
    assert "forgetting on mnist" in permuted_mnist.table(phases)


def test_pruned_weights_stay_zero_through_fine_tuning_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=120):
        outcome = prune_finetune.run(str(tmp_path), overrides=SHORT, quiet=True)
    masks = dict(np.load(tmp_path / "mask.npz"))
    (tuned,) = mnist_jax.load(str(tmp_path / "fine_tuned")).members
    (dense,) = mnist_jax.load(str(tmp_path / "dense")).members
    for name, mask in masks.items():
        layer = name.split("/")[0]
        kept = tuned.params[layer]["kernel"]
        assert np.all(kept[mask == 0] == 0)  # exactly zero
        moved = kept[mask == 1] != dense.params[layer]["kernel"][mask == 1]
        assert moved.mean() > 0.5  # the kept ones train (a dead unit's stay)
        assert mask.mean() == pytest.approx(1 - prune_finetune.SPARSITY, abs=0.01)
    assert outcome.zeros == pytest.approx(prune_finetune.SPARSITY, abs=0.01)
