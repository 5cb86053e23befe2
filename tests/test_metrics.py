"""Losses and metrics as registered components (#17): a metric declared once reaches every
output, loss settings sweep in one program, the optional metrics, a user's own loss and metric
through a checkpoint and a fresh process, the dropout settings refused. On tfds mock data."""

import csv
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import five_layer_relu, softmax
from mnist_jax import cli, hparams_logs, metrics, overrides, sweep
from tests.mock_run import train_then_evaluate
from tests.test_experiments import scalars

SMALL = ["--batch-size", "20", "--steps", "6"]  # 120 mock images: one whole epoch


def train_mock(config, tmp_path, *args):
    """`cli.main` on mock data with logs, JSON and CSV; the result and the JSON report."""
    argv = [
        "--logdir", str(tmp_path / "logs"), "--json", str(tmp_path / "out.json"),
        "--csv", str(tmp_path / "out.csv"), *SMALL, *args,
    ]  # fmt: skip
    with tfds.testing.mock_data(num_examples=120):
        result = cli.main(config, argv)
    return result, json.loads((tmp_path / "out.json").read_text())


@pytest.fixture
def logit_norm():
    """A metric of the test's own, declared once here: registered for this test only."""

    @metrics.register("logit_norm", where=(metrics.BATCH, metrics.TEST), short="lnorm")
    def _(o: metrics.Observed):
        return jnp.linalg.norm(o.logits_BxK, axis=-1).mean()

    yield "logit_norm"
    del metrics.METRICS.entries["logit_norm"]


def test_a_metric_declared_once_reaches_all_five_outputs_mock_data(logit_norm, tmp_path, capsys):
    result, saved = train_mock(softmax.CONFIG, tmp_path)
    (run,) = saved["runs"]
    (epoch,) = run["epochs"]
    assert np.isfinite(epoch["logit_norm"]) and np.isfinite(epoch["test_logit_norm"])
    assert run["test_logit_norm"] == epoch["test_logit_norm"]
    train, test = (scalars(Path(result.runs[0].run_dir) / split) for split in ("train", "test"))
    assert len(train["batch_logit_norm"]) == 6
    assert train["epoch_logit_norm"] == [(1, np.float32(epoch["logit_norm"]))]
    assert test["epoch_logit_norm"] == [(1, np.float32(epoch["test_logit_norm"]))]
    (row,) = csv.DictReader((tmp_path / "out.csv").open())
    assert float(row["train_logit_norm"]) == epoch["logit_norm"]
    assert float(row["test_logit_norm"]) == epoch["test_logit_norm"]
    experiment = hparams_logs.read_experiment(str(tmp_path / "logs" / hparams_logs.EXPERIMENT_FILE))
    shown = [(m.name.group, m.name.tag) for m in experiment.metric_infos]
    assert ("test", "epoch_logit_norm") in shown and ("train", "epoch_logit_norm") in shown
    assert [g for g, _ in shown] == sorted((g for g, _ in shown), key=lambda g: g != "test")
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch 1/1"))
    assert f"lnorm {epoch['logit_norm']:.4f}" in line
    assert f"test_lnorm {epoch['test_logit_norm']:.4f}" in line


@pytest.mark.slow  # minutes of CPU in all: .ci/run runs it
def test_a_label_smoothing_sweep_is_one_group_and_equals_each_member_alone_mock_data(tmp_path):
    members = sweep.expand(softmax.CONFIG, overrides.parse_all(["loss.label_smoothing=0,0.05,0.1"]))
    assert len(sweep.groups(members)) == 1  # one compiled program: the values are data
    swept, _ = train_mock(softmax.CONFIG, tmp_path / "sweep", "loss.label_smoothing=0,0.05,0.1")
    for run, value in zip(swept.runs, (0, 0.05, 0.1), strict=True):
        alone, _ = train_mock(
            softmax.CONFIG, tmp_path / str(value), f"loss.label_smoothing={value}"
        )
        # Alone the value is a constant of the program, in the sweep data: XLA may round
        # differently in the last bits, nothing more.
        np.testing.assert_allclose(run.batch_losses, alone.runs[0].batch_losses, rtol=1e-5)
        assert run.test_loss == pytest.approx(alone.runs[0].test_loss, rel=1e-5)
    losses = [r.test_loss for r in swept.runs]
    assert losses[0] < losses[1] < losses[2]  # smoothed targets: a higher floor on the loss


@pytest.mark.slow  # minutes of CPU in all: .ci/run runs it
def test_an_l2_sweep_shrinks_every_layers_weight_norm_mock_data(tmp_path):
    args = ["model.hidden=[16,16]", "loss.l2=0,1", "metrics=[weight_norm,grad_norm]"]
    result, saved = train_mock(five_layer_relu.CONFIG, tmp_path, *args)
    assert {r["group"] for r in saved["runs"]} == {0}
    plain, penalised = (r["epochs"][-1] for r in saved["runs"])
    layers = [f"weight_norm/dense_{k}" for k in (1, 2, 3)]
    for layer in layers:
        assert penalised[layer] < plain[layer]
    assert all(np.isfinite(e["grad_norm"]) for e in (plain, penalised))
    train = scalars(Path(result.runs[1].run_dir) / "train")
    assert set(layers) | {"batch_grad_norm", "epoch_grad_norm"} <= set(train)
    (row, _) = csv.DictReader((tmp_path / "out.csv").open())
    assert float(row["weight_norm/dense_1"]) == plain["weight_norm/dense_1"]


def test_without_optional_metrics_none_is_computed_mock_data(tmp_path):
    _, saved = train_mock(five_layer_relu.CONFIG, tmp_path, "model.hidden=[16,16]")
    (epoch,) = saved["runs"][0]["epochs"]
    assert not [k for k in epoch if "norm" in k]
    assert len(saved["runs"][0]["class_accuracy"]) == 10  # the end's, always
    assert np.array(saved["runs"][0]["confusion_matrix"]).sum() == 120  # mock test images


@pytest.mark.parametrize(
    "args, words",
    [
        (["model.dropout_rate=0.3"], "dropout_rate=0.3 applies to no layer"),
        (["model.dropout_after=[2,5]"], "dropout_after takes hidden layer numbers from 1 to 4"),
    ],
)
def test_dropout_settings_that_do_nothing_are_refused_before_any_work(
    args, words, tmp_path, capsys
):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(five_layer_relu.CONFIG, ["--logdir", str(tmp_path / "logs"), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()


MY_EXPERIMENT = """
\"\"\"An experiment module of one's own: its own loss (with a setting) and its own metric.\"\"\"

import jax.numpy as jnp
import tensorflow_datasets as tfds

from mnist_jax import cli, losses, metrics
from mnist_jax.config import Config


@losses.LOSSES.register("hinge")
def hinge(logits_BxK, y_BxK, *, margin: float = 1.0):
    true_B1 = (logits_BxK * y_BxK).sum(-1, keepdims=True)
    return (jnp.maximum(0.0, margin + logits_BxK - true_B1) * (1 - y_BxK)).sum(-1).mean()


@metrics.register("mean_logit", where=(metrics.BATCH, metrics.TEST))
def mean_logit(o):
    return o.logits_BxK.mean()


CONFIG = Config(name="my_exp", model_name="softmax", loss_name="hinge", epochs=1, batch_size=20)

if __name__ == "__main__":
    with tfds.testing.mock_data(num_examples=200):
        cli.main(CONFIG)
"""


@pytest.mark.slow  # two fresh processes: what it checks is a process that never imported it
def test_a_users_loss_and_metric_survive_checkpoint_and_fresh_evaluate_mock_data(tmp_path):
    before, after = train_then_evaluate(tmp_path, "my_exp", MY_EXPERIMENT, "loss.margin=0.5,1")
    assert [r["config"]["loss"] for r in after] == [{"margin": 0.5}, {"margin": 1.0}]
    assert [r["group"] for r in before] == [0, 0]  # the margin is data: one program
    for b, a in zip(before, after, strict=True):
        assert a["config"]["loss_name"] == "hinge"
        assert (a["test_loss"], a["test_mean_logit"]) == (b["test_loss"], b["test_mean_logit"])
    run_dir = tmp_path / "logs" / "my_exp" / before[0]["run"]
    assert "epoch_mean_logit" in scalars(run_dir / "test")
