"""The test metrics `nll` and `ece` and `evaluate --ensemble`: equal to a hand computation on fixed
logits, reported by every run (JSON, CSV, TensorBoard's HParams), and the ensemble's figures those
of the members' mean probability."""

import csv
import json
import math

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from trained_runs import mock_run, mock_test_set

import mnist_jax
from mnist_jax import evaluate, hparams_logs, metrics
from mnist_jax.config import Config

# Six examples, three classes; two members' logits.
LOGITS_A = np.array(
    [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [1.0, 1.0, 1.1], [4.0, 0.0, 0.0],
     [0.0, -2.0, 2.5]], np.float32,
)  # fmt: skip
LOGITS_B = np.array(
    [[1.0, 1.5, -1.0], [0.0, 0.0, 2.0], [-0.5, 1.0, 0.2], [0.3, 2.0, 0.1], [2.0, 1.0, 0.0],
     [0.5, 0.0, 0.2]], np.float32,
)  # fmt: skip
LABELS = np.array([0, 2, 1, 0, 0, 2])


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def hand_ece(p, labels, bins=15):
    """Guo et al.'s ECE by its definition, one bin at a time."""
    confidence, predicted = p.max(-1), p.argmax(-1)
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs((predicted[inside] == labels[inside]).mean() - confidence[inside].mean())
            total += inside.sum() / len(labels) * gap
    return total


def test_nll_and_ece_equal_a_hand_computation_on_fixed_logits():
    observed = metrics.Observed(LOGITS_A, np.eye(3, dtype=np.float32)[LABELS])
    p = softmax(LOGITS_A.astype(np.float64))
    hand_nll = -np.mean(np.log(p[np.arange(6), LABELS]))
    assert float(metrics.nll(observed)) == pytest.approx(hand_nll, rel=1e-6)
    assert float(metrics.ece(observed)) == pytest.approx(hand_ece(p, LABELS), abs=1e-6)
    assert hand_ece(p, LABELS) > 0.05  # not a trivial case: several bins, gaps both ways


def test_the_ensembles_figures_equal_a_hand_computation_on_fixed_logits():
    mean = (softmax(LOGITS_A.astype(np.float64)) + softmax(LOGITS_B.astype(np.float64))) / 2
    figures = metrics.of_probabilities(
        (jax.nn.softmax(LOGITS_A) + jax.nn.softmax(LOGITS_B)) / 2, LABELS
    )
    assert float(figures["accuracy"]) == pytest.approx((mean.argmax(-1) == LABELS).mean())
    hand_nll = -np.mean(np.log(mean[np.arange(6), LABELS]))
    assert float(figures["nll"]) == pytest.approx(hand_nll, rel=1e-6)
    assert float(figures["ece"]) == pytest.approx(hand_ece(mean, LABELS), abs=1e-6)


RELU = Config(name="relu", model_name="mlp", model={"hidden": [16]}, epochs=1)


def test_every_run_reports_test_nll_and_ece_mock_data(tmp_path):
    smoothing = ["loss.label_smoothing=0,0.2", "--json", str(tmp_path / "r.json")]
    mock_run(tmp_path, RELU, *smoothing, "--csv", str(tmp_path / "r.csv"))
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    plain, smoothed = runs
    assert plain["test_nll"] == pytest.approx(plain["test_loss"], rel=1e-6)  # the same loss
    assert smoothed["test_nll"] != pytest.approx(smoothed["test_loss"], rel=1e-3)
    assert all(0 <= r["test_ece"] <= 1 for r in runs)
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [float(r["test_nll"]) for r in rows] == [r["test_nll"] for r in runs]
    assert [float(r["test_ece"]) for r in rows] == [r["test_ece"] for r in runs]
    experiment = hparams_logs.read_experiment(str(tmp_path / "logs" / hparams_logs.EXPERIMENT_FILE))
    shown = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert {("test", "epoch_nll"), ("test", "epoch_ece")} <= shown  # HParams' columns


def test_evaluate_ensemble_reports_each_member_and_their_mean_mock_data(tmp_path, capsys):
    mock_run(tmp_path, RELU, "--seed", "0,1,2")
    with tfds.testing.mock_data(num_examples=200):
        evaluate.main([str(tmp_path / "ckpt"), "--ensemble", "--json", str(tmp_path / "e.json")])
    report = json.loads((tmp_path / "e.json").read_text())["ensemble"]
    images, labels = mock_test_set()
    members = mnist_jax.load(str(tmp_path / "ckpt")).members
    p_MxNxK = np.stack([m.predict(images) for m in members])
    mean = metrics.of_probabilities(p_MxNxK.mean(0), labels)
    assert report["mean"] == pytest.approx({k: float(v) for k, v in mean.items()}, rel=1e-5)
    for figures, run in zip(report["members"], report_runs(tmp_path), strict=True):
        assert figures["accuracy"] == pytest.approx(run["test_accuracy"], abs=1e-6)
        assert figures["nll"] == pytest.approx(run["test_nll"], rel=1e-4)
        assert figures["ece"] == pytest.approx(run["test_ece"], abs=1e-5)
    out = capsys.readouterr().out
    assert "ensemble (mean of 3)" in out and math.isfinite(report["mean"]["nll"])


def report_runs(tmp_path):
    return json.loads((tmp_path / "e.json").read_text())["runs"]
