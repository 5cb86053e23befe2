"""Searches trained end to end on mock data (120 random images, 40 held out for validation,
batches of 20): random search, successive halving and PBT choose on the validation split only,
compile each program once, record what each member trained, and resume to the same numbers."""

import csv
import json
import shlex
import signal

import pytest
import tensorflow_datasets as tfds
from mock_run import argv_with

from experiments import benchmark_search, five_layer_relu_dropout, search_keras_mlp
from mnist_jax import (
    cli,
    datasets,
    experiment,
    interrupt,
    pbt,
    search,
    strategies,
    train,
)
from mnist_jax.results import Epoch, Result
from tests.test_experiments import scalars

CONFIG = five_layer_relu_dropout.CONFIG
SMALL = ["model.hidden=[16]", "model.dropout_after=[1]", "val_split=40"]
DRAWS = ["lr=loguniform(1e-4,1e-1)", "model.dropout_rate=uniform(0,0.5)"]


def train_mock(tmp_path, *args, name="out"):
    """`cli.main` on mock data; the result and its JSON report."""
    out = tmp_path / f"{name}.json"
    defaults = ["--batch-size", "20", "--logdir", str(tmp_path / "logs"), "--json", str(out)]
    argv = argv_with(defaults, args)
    with tfds.testing.mock_data(num_examples=120):
        result = cli.main(CONFIG, [*argv, *SMALL])
    return result, json.loads(out.read_text())


def test_random_search_chooses_on_validation_and_says_how_to_train_the_choice_mock_data(
    tmp_path, capsys
):
    result, saved = train_mock(tmp_path, "--epochs", "1", "--samples", "4", "seed=0,1", *DRAWS)
    assert len(result.runs) == 8  # 4 draws x 2 seeds
    assert saved["swept"] == ["seed", "lr", "model.dropout_rate"]
    draws = {(r["hparams"]["lr"], r["hparams"]["model.dropout_rate"]) for r in saved["runs"]}
    assert len(draws) == 4
    assert all(1e-4 <= lr <= 1e-1 and 0 <= rate <= 0.5 for lr, rate in draws)
    scores = [r.history[-1].values["val_accuracy"] for r in result.runs]
    chosen = saved["search"]["chosen"]
    assert chosen == search.ranking(scores)[0] and result.chosen is result.runs[chosen]
    tested = [i for i, r in enumerate(saved["runs"]) if r["test_accuracy"] is not None]
    assert tested == [chosen]  # the test set is read for the choice only
    assert all("test_loss" not in e for r in saved["runs"] for e in r["epochs"][:-1])
    assert saved["search"]["test_accuracy"] == saved["runs"][chosen]["test_accuracy"]
    command = saved["search"]["command"]
    assert " -m experiments.five_layer_relu_dropout " in command
    assert f"chosen: {command}" in capsys.readouterr().out
    args = shlex.split(command)[3:]  # the command trains exactly the chosen member
    args = cli.parse(cli.parser(CONFIG), args)
    _, population = cli.settings(CONFIG, args, experiment.Options())
    (again,) = population.members
    assert again.config == result.chosen.member.config


def test_the_search_flags_are_short_forms_of_search_keys(monkeypatch):
    seen = []

    def record(config, plan, options):
        seen.append(plan.search)
        return Result(config, [], None, plan.swept)

    monkeypatch.setattr(experiment, "run", record)
    given = ["lr=loguniform(1e-4,1e-2)", "val_split=10"]
    flags = ["--search", "pbt", "--samples", "9", "--search-seed", "2", "--pbt-interval", "3"]
    cli.main(CONFIG, [*flags, "--eta", "2", "--rung-epochs", "4", *given])
    keys = ["search=pbt", "search.samples=9", "search.seed=2", "search.pbt_interval=3"]
    cli.main(CONFIG, [*given, *keys, "search.eta=2", "search.rung_epochs=4"])
    assert seen[0] == seen[1] == search.Search("pbt", 9, 2, eta=2, rung_epochs=4, pbt_interval=3)


def test_an_experiment_modules_search_settings_yield_to_the_command_line(monkeypatch):
    seen = []

    def record(config, plan, options):
        seen.append(plan)
        return Result(config, [], None, plan.swept)

    monkeypatch.setattr(experiment, "run", record)
    module = search_keras_mlp
    cli.main(module.CONFIG, [], defaults=module.SEARCH)
    cli.main(module.CONFIG, ["--samples", "4", "--steps", "7", "lr=1e-3,2e-3"], module.SEARCH)
    default, changed = seen
    assert default.search == search.Search("halving", samples=9, eta=3, rung_epochs=1)
    assert len(default.members) == 9 and default.swept == ["lr", "model.dropout_rate"]
    assert {(m.config.val_split, m.config.epochs) for m in default.members} == {(5000, 3)}
    assert changed.search.samples == 4 and len(changed.members) == 8  # 4 draws x 2 rates
    assert {(m.config.epochs, m.config.steps) for m in changed.members} == {(None, 7)}


def poisoned_test_labels(load):
    """`datasets.load` with every test label wrong."""

    def poisoned(name, split, **kwargs):
        images, labels = load(name, split, **kwargs)
        return images, (labels + 1) % 10 if split == "test" else labels

    return poisoned


def test_selection_never_reads_the_test_set_mock_data(tmp_path, monkeypatch):
    args = ["--epochs", "1", "--samples", "4", "--no-logs", *DRAWS]
    _, clean = train_mock(tmp_path, *args, name="clean")
    monkeypatch.setattr(datasets, "load", poisoned_test_labels(datasets.load))
    _, poisoned = train_mock(tmp_path, *args, name="poisoned")
    assert poisoned["search"]["chosen"] == clean["search"]["chosen"]
    assert poisoned["search"]["val_accuracy"] == clean["search"]["val_accuracy"]
    assert poisoned["search"]["test_accuracy"] != clean["search"]["test_accuracy"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--samples", "4", "lr=loguniform(1e-4,1e-2)"], "val_split=N"),
        (["--search", "halving", "lr=1e-3,1e-2"], "val_split=N"),
        (["--search", "pbt", "lr=1e-3,1e-2"], "val_split=N"),
        (["search=pbt", "lr=1e-3,1e-2"], "val_split=N"),
        (["lr=loguniform(1e-4,1e-2)", "val_split=10"], "give --samples N"),
        (["--samples", "4", "val_split=10"], "draws settings from distributions"),
        (
            ["--samples", "4", "--search", "halving", "optimizer=choice(adam,sgd)"]
            + ["val_split=10"],
            "one compiled program",
        ),
        (["search.samples=0", "lr=uniform(0.1,0.2)", "val_split=10"], "at least 1"),
    ],
)
def test_a_search_that_cannot_run_is_refused_in_one_line(args, words, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(CONFIG, args)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and words in err, err


# --- Successive halving -------------------------------------------------------------------------


def history_of(scores_by_epoch: list[list[float]]) -> list[list[Epoch]]:
    """Members' histories with the given validation accuracies, epoch by epoch."""
    return [
        [Epoch(e + 1, {"loss": 0.0, "val_accuracy": s}, 0.0) for e, s in enumerate(scores)]
        for scores in scores_by_epoch
    ]


def test_halving_keeps_the_best_of_each_rung():
    rungs = search.rungs(9, 3, 1, 30)  # 9 train 1 epoch, 3 train 2, 1 trains 3
    scores = [[0.1, 0.1, 0.1] for _ in range(9)]
    scores[6] = [0.5, 0.2, 0.9]  # the planted best: best after epoch 1 and after epoch 2
    scores[2] = [0.4, 0.1, 0.0]
    scores[7] = [0.45, 0.3, 0.0]
    history = history_of(scores)
    assert strategies.halving_alive(rungs, history, 1) == list(range(9))
    assert strategies.halving_alive(rungs, history, 2) == [2, 6, 7]
    assert strategies.halving_alive(rungs, history, 3) == [7]  # 0.3 beats the planted 0.2
    scores[6][1] = 0.35
    assert strategies.halving_alive(rungs, history_of(scores), 3) == [6]
    assert strategies.halving_alive(rungs, history, 4) == []


@pytest.mark.slow  # minutes of CPU in all: .ci/run runs it
def test_halving_trains_each_rung_in_a_smaller_program_compiled_once_mock_data(tmp_path):
    before = train.train_epoch._cache_size()
    args = ["--epochs", "5", "--samples", "9", "--search", "halving", "--csv", str(tmp_path / "r")]
    # Batches of 10: programs no other test compiled.
    result, saved = train_mock(tmp_path, *args, "--batch-size", "10", "search.eta=3", *DRAWS)
    assert train.train_epoch._cache_size() - before == 3  # 9, 3 and 1 members
    epochs = sorted((len(r["epochs"]) for r in saved["runs"]), reverse=True)
    assert epochs == [3, 2, 2, 1, 1, 1, 1, 1, 1]
    assert len(saved["runs"]) == 9 and saved["search"]["epochs"] == 3
    assert len(result.chosen.history) == 3  # the last rung's one member
    assert "epochs=3" in saved["search"]["command"]
    rows = list(csv.DictReader((tmp_path / "r").open()))
    assert sorted(int(r["epochs"]) for r in rows) == sorted(epochs)


# --- Population-based training ------------------------------------------------------------------


def test_pbt_perturbs_without_recompiling_and_records_each_lineage_mock_data(tmp_path):
    trained, exploited = train.train_epoch._cache_size(), pbt.exploit_explore._cache_size()
    args = ["--epochs", "4", "--samples", "8", "--search", "pbt", "--csv", str(tmp_path / "r.csv")]
    # Batches of 40: a program no other test compiled.
    result, saved = train_mock(tmp_path, *args, "--batch-size", "40", *DRAWS)
    assert train.train_epoch._cache_size() - trained == 1  # one program for all 4 epochs
    assert pbt.exploit_explore._cache_size() - exploited == 1  # and one for 3 PBT steps
    copies = [
        (m, e["epoch"], e["copied_from"])
        for m, r in enumerate(saved["runs"])
        for e in r["lineage"]
        if e["copied_from"] is not None
    ]
    assert len(copies) == 3 * pbt.quarter(8)  # the worst 2 of 8 after epochs 1, 2 and 3
    for m, epoch, source in copies:
        after = saved["runs"][m]["lineage"][epoch]["hparams"]  # what it trained with next
        before = saved["runs"][source]["lineage"][epoch - 1]["hparams"]
        assert after != before  # perturbed
        assert 1e-4 <= after["lr"] <= 1e-1 and 0 <= after["model.dropout_rate"] <= 0.5
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert sum(len(r["lineage"].split()) for r in rows) == len(copies)
    m, epoch, _ = copies[0]
    tags = scalars(result.runs[m].run_dir + "/train")
    lr_points = [round(float(v), 6) for _, v in tags["hparams/lr"]]
    lineage_lrs = [round(e["hparams"]["lr"], 6) for e in saved["runs"][m]["lineage"]]
    assert lr_points == lineage_lrs and len(lr_points) == 4


# --- Resume mid-search --------------------------------------------------------------------------


def stop_after(epochs: int, monkeypatch):
    """A Ctrl-C that arrives during epoch `epochs`: the search stops after it."""
    calls = []

    def agreed_stop(stop):
        calls.append(1)
        if len(calls) >= epochs:
            stop.signum = signal.SIGINT
        return stop.signum

    monkeypatch.setattr(interrupt, "agreed_stop", agreed_stop)


@pytest.mark.parametrize(
    "strategy, stopped_after",
    [
        pytest.param(
            ["--search", "halving", "--rung-epochs", "2", "--samples", "4", "--eta", "2"],
            3,
            id="halving-mid-rung",
            marks=pytest.mark.slow,  # the same resume as pbt's, over more epochs: .ci/run runs it
        ),
        pytest.param(
            ["--search", "pbt", "--samples", "4", "--pbt-interval", "2"], 2, id="pbt-after-a-step"
        ),
    ],
)
def test_resume_mid_search_equals_a_straight_run_mock_data(
    tmp_path, monkeypatch, strategy, stopped_after
):
    args = ["--epochs", "6", "--no-logs", *strategy]
    a, b = ["--checkpoint-dir", str(tmp_path / "a")], ["--checkpoint-dir", str(tmp_path / "b")]
    _, straight = train_mock(tmp_path, *args, *a, *DRAWS, name="a")
    with monkeypatch.context() as patch:
        stop_after(stopped_after, patch)
        with pytest.raises(SystemExit) as stopped:
            train_mock(tmp_path, *args, *b, *DRAWS, name="b")
    assert stopped.value.code == 128 + signal.SIGINT
    _, resumed = train_mock(tmp_path, *args, *b, "--resume", *DRAWS, name="b")

    def numbers(report):
        keep = ("epoch", "loss", "val_loss", "val_accuracy", "test_loss", "hparams", "copied_from")
        return [[{k: e.get(k) for k in keep} for e in r["epochs"]] for r in report["runs"]]

    assert numbers(resumed) == numbers(straight)
    assert resumed["search"] == straight["search"]


def test_the_search_benchmark_reports_time_ratio_and_member_epochs():
    report = {
        "runs": [{"epochs": [{}] * n} for n in (3, 2, 2, 1, 1, 1, 1, 1, 1)],
        "search": {"val_accuracy": 0.97, "test_accuracy": 0.96},
    }
    shown = benchmark_search.line("halving", [10.0, 12.0, 11.0], report, 22.0)
    assert "11.0 s" in shown and "0.50 x" in shown and "13 member-epochs" in shown
    assert "val 0.9700, test 0.9600" in shown
