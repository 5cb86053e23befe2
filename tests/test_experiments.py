"""Every experiment end to end through its command line: on tfds mock data (random images),
and a short real-data run when MNIST is available."""

import importlib
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorboard.backend.event_processing import event_accumulator

from experiments import find_experiments
from experiments import five_layer_relu as five_layer_relu_module
from mnist_jax import cli, experiment, models

RUN_KEYS = {
    "learning_rate",
    "test_loss",
    "test_accuracy",
    "test_binary_accuracy",
    "train_seconds",
    "epochs",
    "seed",
    "diverged",
    "hparams",
    "group",
    "run",
    "config",
}
EPOCH_KEYS = {"epoch", "loss", "accuracy", "test_loss", "test_accuracy", "seconds"}


def config_of(name):
    return importlib.import_module(f"experiments.{name}").CONFIG


def run_mock(name, tmp_path, *flags, num_examples=120):
    argv = ["--logdir", str(tmp_path / "logs"), "--json", str(tmp_path / "out.json"), "--quiet"]
    with tfds.testing.mock_data(num_examples=num_examples):
        report = cli.main(config_of(name), [*argv, *flags])
    with open(tmp_path / "out.json") as f:
        return report, json.load(f)


def run_dirs(folder) -> list[str]:
    """The run directories in an experiment's log folder (its TensorBoard layout file aside)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def scalars(event_dir):
    events = event_accumulator.EventAccumulator(
        str(event_dir), size_guidance={event_accumulator.SCALARS: 0}
    )
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


# 120 mock examples in batches of 20: 6 batches an epoch. 12 steps are two whole epochs, one
# compiled epoch program; five_layer_relu's 8 steps end in a partial epoch of 2 batches, a second
# program, the same code for every experiment.
PARTIAL_EPOCH_STEPS = {"five_layer_relu": 8}
# The CNN's convolution forced: `auto` would time every candidate first (tests/test_conv.py tests
# that choice); here only the experiment's pipeline is under test.
EXTRA_FLAGS = {"gorner_cnn": ("model.conv=patches",)}


# These differ from a fast case only in their settings (activation, schedule, optimizer), which
# the fast tests of those settings cover, or (gorner_cnn) are run end to end by another fast test
# (tests/test_conv.py prints its choices from a mock run); .ci/run runs them with the slow set.
SLOW_END_TO_END = {
    "gorner_cnn",
    "five_layer_sigmoid",
    "five_layer_relu_lrdecay",
    "five_layer_relu_lrdecay_dropout",
    "keras_mnist_mlp",
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in SLOW_END_TO_END else name
        for name in find_experiments()
    ],
)
def test_experiment_end_to_end_mock_data(name, tmp_path):
    steps = PARTIAL_EPOCH_STEPS.get(name, 12)
    flags = ("--steps", str(steps), "--batch-size", "20", *EXTRA_FLAGS.get(name, ()))
    report, saved = run_mock(name, tmp_path, *flags)
    assert saved["experiment"] == name
    (run,) = saved["runs"]
    assert set(run) >= RUN_KEYS
    assert [set(e) >= EPOCH_KEYS for e in run["epochs"]] == [True, True]
    dataset = config_of(name).dataset  # named in the run when it is not MNIST
    shown = {} if dataset == "mnist" else {"dataset": dataset}
    run_name = "".join(f"dataset_{v}-" for v in shown.values()) + "lr_{:g}-seed_0"
    assert (run["hparams"], run["group"], run["run"]) == (
        shown,
        0,
        run_name.format(run["learning_rate"]),
    )
    assert run["config"]["name"] == name and run["config"]["steps"] == steps
    assert len(report.runs[0].batch_losses) == steps
    run_dir = tmp_path / "logs" / name / run_name.format(config_of(name).lr)
    assert json.loads((run_dir / "config.json").read_text())["experiment"] == name
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == ["test", "train"]
    train, test = scalars(run_dir / "train"), scalars(run_dir / "test")
    assert [step for step, _ in train["batch_loss"]] == list(range(1, steps + 1))
    np.testing.assert_allclose(
        [v for _, v in train["batch_loss"]], report.runs[0].batch_losses, rtol=1e-6
    )
    batch = {"batch_loss", "batch_accuracy", "batch_binary_accuracy", "batch_learning_rate"}
    epoch = {"epoch_loss", "epoch_accuracy", "epoch_binary_accuracy"}
    assert set(train) == batch | epoch | {"epoch_learning_rate"}
    calibration = {"epoch_nll", "epoch_ece"}  # test-set metrics only
    private = config_of(name).train_step_name == "dp_sgd"
    figures = {"dp_epsilon", "dp_delta"} if private else set()  # the privacy it spent
    classes = {f"class_accuracy/{k}" for k in range(10)}
    assert set(test) == epoch | calibration | classes | figures
    for tag in epoch:  # the same tags in both runs: TensorBoard overlays them
        assert [step for step, _ in train[tag]] == [step for step, _ in test[tag]] == [1, 2]


def resolved(name, argv):
    """The one member `argv` makes of experiment `name`'s config."""
    p = cli.parser(config_of(name))
    _, population = cli.settings(config_of(name), cli.parse(p, argv), experiment.Options())
    (member,) = population.members
    return member.config


def test_tutorial_setting_and_flags_on_top():
    tutorial = resolved("softmax", ["--tutorial"])
    assert (tutorial.optimizer_name, tutorial.lr) == ("sgd", 0.005)
    assert (tutorial.loss_name, tutorial.raw_pixels, tutorial.epochs) == ("binary", True, 20)
    mixed = resolved("five_layer_relu", ["--tutorial", "--loss", "categorical", "--steps", "5"])
    assert (mixed.loss_name, mixed.raw_pixels, mixed.epochs, mixed.steps) == (
        "categorical",
        True,
        None,
        5,
    )


def test_learning_rate_lists_and_log_ranges_are_the_overrides_grammar():
    p = cli.parser(config_of("softmax"))
    options = experiment.Options()
    _, population = cli.settings(config_of("softmax"), cli.parse(p, ["--lr", "3e-4,1e-3"]), options)
    assert [m.config.lr for m in population.members] == [3e-4, 1e-3]
    _, population = cli.settings(
        config_of("softmax"), cli.parse(p, ["--lr", "1e-4:1e-2:5"]), options
    )
    np.testing.assert_allclose(
        [m.config.lr for m in population.members],
        [1e-4, 10**-3.5, 1e-3, 10**-2.5, 1e-2],
        rtol=1e-9,
    )


@pytest.mark.slow  # run folders and names: test_messages, test_sweep: .ci/run runs it
def test_sweep_members_get_their_own_runs_and_a_sorted_table_mock_data(tmp_path, capsys):
    report, saved = run_mock(
        "five_layer_relu_dropout",  # the program of the next test's sweep, compiled once
        tmp_path,
        "--steps",
        "6",
        "--batch-size",
        "20",
        "--lr",
        "1e-3,1e-2",
        "--seed",
        "0,1",
    )
    assert [(r["learning_rate"], r["seed"]) for r in saved["runs"]] == [
        (1e-3, 0),
        (1e-3, 1),
        (1e-2, 0),
        (1e-2, 1),
    ]
    runs = run_dirs(tmp_path / "logs" / "five_layer_relu_dropout")
    assert runs == ["lr_0.001-seed_0", "lr_0.001-seed_1", "lr_0.01-seed_0", "lr_0.01-seed_1"]
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:2] == ["lr", "seeds"]  # the swept key; seeds repeat each rate
    rows = [line.split() for line in table[2:]]
    assert [(row[0], row[1], row[3]) for row in rows] in (
        [("0.001", "2", "±"), ("0.01", "2", "±")],
        [("0.01", "2", "±"), ("0.001", "2", "±")],
    )  # mean ± std over the seeds, one row per rate
    accuracies = [float(row[5]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)


@pytest.mark.slow  # minutes of CPU in all: .ci/run runs it
def test_members_past_max_members_train_in_chunks_with_the_same_numbers_mock_data(tmp_path):
    flags = ("--steps", "6", "--batch-size", "20", "--lr", "1e-3,1e-2", "--seed", "0,1")
    _, together = run_mock("five_layer_relu_dropout", tmp_path / "a", *flags)
    _, chunked = run_mock("five_layer_relu_dropout", tmp_path / "b", *flags, "--max-members", "3")
    for a, b in zip(together["runs"], chunked["runs"], strict=True):
        assert (a["learning_rate"], a["seed"]) == (b["learning_rate"], b["seed"])
        np.testing.assert_allclose(a["test_loss"], b["test_loss"], rtol=1e-5)
    assert len(run_dirs(tmp_path / "b" / "logs" / "five_layer_relu_dropout")) == 4


def test_a_rerun_writes_beside_earlier_logs_never_into_them_mock_data(tmp_path):
    run_mock("softmax", tmp_path, "--steps", "2", "--batch-size", "20")
    first = tmp_path / "logs" / "softmax" / "lr_0.5-seed_0"
    before = sorted(p.name for p in first.rglob("*"))
    run_mock("softmax", tmp_path, "--steps", "2", "--batch-size", "20")
    assert sorted(p.name for p in first.rglob("*")) == before
    assert (tmp_path / "logs" / "softmax" / "lr_0.5-seed_0-2" / "train").is_dir()


def test_overwrite_replaces_the_earlier_run_of_the_same_name_only_mock_data(tmp_path):
    run_mock("softmax", tmp_path, "--steps", "2", "--batch-size", "20")
    run_mock("softmax", tmp_path, "--steps", "2", "--batch-size", "20")
    runs = tmp_path / "logs" / "softmax"
    kept = sorted(p.name for p in (runs / "lr_0.5-seed_0-2").rglob("*"))
    old_events = sorted(p.name for p in (runs / "lr_0.5-seed_0").rglob("events.*"))
    run_mock("softmax", tmp_path, "--steps", "2", "--batch-size", "20", "--overwrite")
    assert run_dirs(runs) == ["lr_0.5-seed_0", "lr_0.5-seed_0-2"]
    new_events = sorted(p.name for p in (runs / "lr_0.5-seed_0").rglob("events.*"))
    # train, test, the hparams session's start and end
    assert len(new_events) == 4 and not set(new_events) & set(old_events)
    assert sorted(p.name for p in (runs / "lr_0.5-seed_0-2").rglob("*")) == kept


@pytest.mark.slow  # test_train's same-seed test is the fast one: .ci/run runs this
def test_same_seed_same_numbers_mock_data(tmp_path):
    def numbers(path):
        _, saved = run_mock("five_layer_relu_dropout", path, "--steps", "6", "--batch-size", "20")
        return [(e["loss"], e["test_loss"], e["test_accuracy"]) for e in saved["runs"][0]["epochs"]]

    assert numbers(tmp_path / "a") == numbers(tmp_path / "b")


def test_short_real_mnist_run_learns(mnist_data_dir, tmp_path, optimized):
    report = cli.main(
        config_of("five_layer_relu"),
        ["--steps", "300", "--data-dir", mnist_data_dir, "--logdir", str(tmp_path), "--quiet"],
    )
    assert report.runs[0].test_accuracy > 0.9  # 0.93 measured after these 300 steps


def test_more_devices_than_present_is_a_clear_error_mock_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_mock("softmax", tmp_path, "--devices", "99")
    assert exit_info.value.code == 2
    assert "--devices 99: this process sees" in capsys.readouterr().err


def test_train_and_evaluate_returns_the_trained_params_and_prints_nothing_mock_data(
    tmp_path, capsys
):
    with tfds.testing.mock_data(num_examples=120):
        result = experiment.train_and_evaluate(
            five_layer_relu_module.CONFIG, ["epochs=1", "batch_size=20"], logdir=str(tmp_path)
        )
    (run,) = result.runs
    assert models.count_params(run.params) == 185_300
    assert (run.hparams, len(run.history), len(run.batch_losses)) == ({}, 1, 6)
    assert run.test_accuracy == run.history[-1].values["test_accuracy"] and np.isfinite(
        run.test_loss
    )
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "five_layer_relu" / "lr_0.001-seed_0" / "config.json").is_file()
