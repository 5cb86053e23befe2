"""Sweeps of any setting: `KEY=VALUE` overrides become members, members become groups (those that
differ only in floats share one compiled program); then sweeps trained end to end on mock data."""

import csv
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import five_layer_relu, five_layer_relu_dropout, softmax
from mnist_jax import cli, experiment, models, overrides, sweep
from mnist_jax.config import Config, ConfigError

RELU, DROPOUT = five_layer_relu.CONFIG, five_layer_relu_dropout.CONFIG


def expand(config, *args):
    return sweep.expand(config, overrides.parse_all(args))


def test_a_plain_run_is_one_member_with_every_setting_filled_in():
    (member,) = expand(RELU)
    assert (member.learning_rate, member.seed, member.hparams) == (0.001, 0, {})
    assert member.config.model == {
        "hidden": [200, 100, 60, 30],
        "activation": "relu",
        "dropout_rate": 0.0,
        "dropout_after": [],
    }
    assert member.config.optimizer["b1"] == 0.9 and member.config.schedule == {}
    assert sweep.run_name(member) == "lr_0.001-seed_0"
    assert Config.from_json(member.config.to_json()) == member.config


def test_issue_command_1_settings_without_a_sweep():
    members = expand(
        RELU, "model.hidden=[512,512]", "model.dropout_rate=0.2", "model.dropout_after=[1,2]"
    )
    (member,) = members
    assert member.config.model["hidden"] == [512, 512]
    assert member.config.model["dropout_rate"] == 0.2  # typed by the default: a float
    assert member.hparams == {} and sweep.run_name(member) == "lr_0.001-seed_0"
    assert len(sweep.groups(members)) == 1


def test_issue_command_2_a_float_grid_is_one_group():
    members = expand(DROPOUT, "model.dropout_rate=0,0.1,0.25,0.5", "lr=1e-4:1e-2:4", "seed=0,1")
    assert len(members) == 32
    (group,) = sweep.groups(members)
    assert (group.index, group.first, len(group.members)) == (0, 0, 32)
    rates = sorted({m.config.model["dropout_rate"] for m in members})
    assert rates == [0.0, 0.1, 0.25, 0.5]
    assert all(isinstance(m.hparams["model.dropout_rate"], float) for m in members)
    lrs = sorted({m.learning_rate for m in members})
    np.testing.assert_allclose(lrs, np.geomspace(1e-4, 1e-2, 4), rtol=1e-9)
    assert sorted({m.seed for m in members}) == [0, 1]
    assert set(members[0].hparams) == {"model.dropout_rate", "lr", "seed"}
    names = [sweep.run_name(m) for m in members]
    assert names[0] == "dropout_rate_0-lr_0.0001-seed_0" and len(set(names)) == 32
    assert members[0].config.model["dropout_after"] == [2, 3, 4]  # the experiment's own setting


def test_issue_command_3_optimizer_settings_sweep_in_one_group():
    members = expand(RELU, "optimizer=adamw", "optimizer.weight_decay=1e-4,1e-3,1e-2")
    (group,) = sweep.groups(members)
    assert len(group.members) == 3
    assert {m.config.optimizer_name for m in members} == {"adamw"}
    assert [m.hparams for m in members] == [
        {"optimizer.weight_decay": w} for w in (1e-4, 1e-3, 1e-2)
    ]
    assert sweep.run_name(members[1]) == "weight_decay_0.001-lr_0.001-seed_0"


def test_issue_command_4_a_structural_sweep_is_several_groups():
    members = expand(RELU, "model.hidden=[64],[128]", "model.activation=relu,gelu")
    groups = sweep.groups(members)
    assert [(g.index, g.first, len(g.members)) for g in groups] == [
        (0, 0, 1),
        (1, 1, 1),
        (2, 2, 1),
        (3, 3, 1),
    ]
    assert [(m.config.model["hidden"], m.config.model["activation"]) for m in members] == [
        ([64], "relu"),
        ([64], "gelu"),
        ([128], "relu"),
        ([128], "gelu"),
    ]
    assert sweep.run_name(members[1]) == "hidden_64-activation_gelu-lr_0.001-seed_0"


def test_floats_and_structure_mixed_group_by_structure_only():
    members = expand(
        RELU, "model.hidden=[64],[128]", "model.dropout_rate=0,0.5", "model.dropout_after=[1]",
        "seed=0,1",
    )  # fmt: skip
    groups = sweep.groups(members)
    assert [len(g.members) for g in groups] == [4, 4]
    for group in groups:
        assert len({str(m.config.model["hidden"]) for m in group.members}) == 1
    assert [g.first for g in groups] == [0, 4]


@pytest.mark.parametrize(
    "args",
    [
        ("batch_size=50,100",),
        ("loss=categorical,binary",),
        ("dtype=float32,bfloat16",),
        ("optimizer=adam,sgd",),
        ("epochs=1,2",),
    ],
)
def test_structure_splits_groups(args):
    assert len(sweep.groups(expand(RELU, *args))) == 2


@pytest.mark.parametrize(
    "args",
    [
        ("lr=1e-3,1e-2",),
        ("seed=0,1",),
        ("optimizer.b1=0.8,0.9",),
        ("schedule=lab_decay", "schedule.floor=1e-4,1e-3"),
    ],
)
def test_floats_share_one_group(args):
    members = expand(RELU, *args)
    assert len(members) == 2 and len(sweep.groups(members)) == 1


def test_a_renamed_optimizer_starts_from_its_own_defaults():
    (member,) = expand(softmax.CONFIG, "optimizer=sgd", "optimizer.momentum=0.9")
    assert member.config.optimizer_name == "sgd" and member.config.optimizer["momentum"] == 0.9
    (member,) = expand(softmax.CONFIG, "optimizer=sgd", "optimizer.momentum=1")
    assert member.config.optimizer["momentum"] == 1.0  # a number setting: the int widens
    (member,) = expand(softmax.CONFIG, "optimizer=sgd", "optimizer.momentum=null")
    assert member.config.optimizer["momentum"] is None
    (member,) = expand(RELU, "optimizer=keras_rmsprop")
    assert "b1" not in member.config.optimizer


@pytest.mark.parametrize(
    "args, words",
    [
        (("model.hiden=[1]",), ["unknown key 'model.hiden'", "did you mean 'model.hidden'"]),
        (
            ("model.hidden=64,128",),
            ["model.hidden takes a bracketed list", "model.hidden=[64,128]"],
        ),
        (("optimizer=adam", "optimizer.weight_decay=1e-3"), ["adam has no such", "adamw has it"]),
        (("optimizer=adma",), ["unknown optimizer 'adma'", "did you mean 'adam'"]),
        (("model.activation=swish",), ["model.activation takes one of", "'swish'"]),
        (("lr=0",), ["lr takes a positive number, got 0.0"]),
        (("batch_size=0",), ["batch_size takes a whole number of at least 1"]),
        (("loss=mse",), ["unknown loss 'mse'", "registered: binary, categorical"]),
        (("loss.label_smothing=0.1",), ["did you mean 'loss.label_smoothing'"]),
        (("loss=binary", "loss.label_smoothing=0.1"), ["binary has no such", "categorical has it"]),
        (
            ("metrics=[weight_nrom]",),
            ["unknown metric 'weight_nrom'", "did you mean 'weight_norm'"],
        ),
        (("metrics=[loss]",), ["'loss' is always computed", "grad_norm, weight_norm"]),
        (("epochs=2.5",), ["epochs"]),
        # Settings that passed every check and crashed once run.json and the logs existed (#19).
        (("model.hidden=[0]",), ["model mlp: hidden takes widths of at least 1", "[0]"]),
        (("model.hidden=[64,-1]",), ["hidden takes widths of at least 1"]),
        (("model.num_classes=0",), ["unknown key 'model.num_classes'"]),  # the dataset's
        (("seed=2147483648",), ["seed takes a whole number from 0 to 2147483647"]),
        (("seed=-1",), ["seed takes a whole number from 0 to 2147483647"]),
        (("data_seed=1180591620717411303424",), ["data_seed takes a whole number from 0 to"]),
        (("data_seed=4294967296",), ["data_seed takes a whole number from 0 to 2147483647"]),
        (("optimizer=sgd", "optimizer.momentum=abc"), ["optimizer.momentum takes a number"]),
        (("optimizer=sgd", "optimizer.momentum=[1]"), ["optimizer.momentum takes a number"]),
        (("optimizer=rmsprop", "optimizer.momentum=true"), ["optimizer.momentum takes a number"]),
        # Accepted silently before: trained at chance or to NaN.
        (("model.dropout_rate=1.5",), ["dropout_rate takes a fraction from 0 up to", "1.5"]),
        (("model.dropout_rate=1.0",), ["dropout_rate takes a fraction from 0 up to", "1.0"]),
        (
            ("model.dropout_rate=0.5,1", "model.dropout_after=[1]"),
            ["dropout_rate takes a fraction from 0 up to", "1.0"],
        ),
        (
            ("model.dropout_rate=0.3",),
            ["dropout_rate=0.3 applies to no layer", "dropout_after=[1,"],
        ),
        (("model.dropout_after=[2,5]",), ["dropout_after takes hidden layer numbers from 1 to 4"]),
        (("model.dropout_rate=-0.1",), ["dropout_rate takes a fraction from 0 up to", "-0.1"]),
        (("model.dropout_after=[5]",), ["dropout_after takes hidden layer numbers from 1 to 4"]),
    ],
)
def test_bad_overrides_are_refused_in_one_line(args, words):
    with pytest.raises((ConfigError, overrides.OverrideError)) as error:
        expand(RELU, *args)
    message = str(error.value)
    assert "\n" not in message
    for w in words:
        assert w in message


# --- End to end on mock data: 120 random images in batches of 20, a few steps -----------------


def train_mock(config, tmp_path, *args):
    """`cli.main` on mock data with `args`; the result and the JSON report it wrote."""
    argv = ["--logdir", str(tmp_path / "logs"), "--json", str(tmp_path / "out.json"), *args]
    with tfds.testing.mock_data(num_examples=120):
        result = cli.main(config, ["--batch-size", "20", *argv])
    return result, json.loads((tmp_path / "out.json").read_text())


@pytest.mark.slow  # 9 s; a sweep's run names are also checked by test_messages.py's fast test
def test_a_float_grid_trains_in_one_group_with_its_csv_mock_data(tmp_path, capsys):
    grid = ["model.dropout_rate=0,0.5", "lr=1e-3,1e-2", "--csv", str(tmp_path / "runs.csv")]
    # 6 steps, one whole epoch: the program of test_experiments.py's dropout sweep.
    result, saved = train_mock(DROPOUT, tmp_path, "--steps", "6", "--quiet", *grid)
    assert saved["swept"] == ["model.dropout_rate", "lr"]
    assert [(r["hparams"], r["group"]) for r in saved["runs"]] == [
        ({"model.dropout_rate": rate, "lr": lr}, 0) for rate in (0.0, 0.5) for lr in (0.001, 0.01)
    ]
    assert all("chunk" not in r for r in saved["runs"])
    names = [
        "dropout_rate_0-lr_0.001-seed_0",
        "dropout_rate_0-lr_0.01-seed_0",
        "dropout_rate_0.5-lr_0.001-seed_0",
        "dropout_rate_0.5-lr_0.01-seed_0",
    ]
    assert [r["run"] for r in saved["runs"]] == names
    logs = tmp_path / "logs" / "five_layer_relu_dropout"
    assert sorted(p.name for p in logs.iterdir() if p.is_dir()) == names
    config_json = json.loads((logs / names[2] / "config.json").read_text())
    assert config_json["model"]["dropout_rate"] == 0.5 and config_json["group"] == 0
    assert config_json["hparams"] == {"model.dropout_rate": 0.5, "lr": 0.001}

    with open(tmp_path / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:4] == ["model.dropout_rate", "learning_rate", "seed", "loss"]
    assert [(float(r["model.dropout_rate"]), float(r["learning_rate"])) for r in rows] == [
        (0.0, 0.001),
        (0.0, 0.01),
        (0.5, 0.001),
        (0.5, 0.01),
    ]
    for row, run in zip(rows, result.runs, strict=True):
        assert float(row["test_accuracy"]) == pytest.approx(run.test_accuracy)
        assert row["group"] == "0" and row["epochs"] == "1"
    table = capsys.readouterr().out
    assert table.count("best first") == 1 and "model.dropout_rate" in table

    # A member of the grid equals the same setting run alone (the same batches, dropout masks).
    alone, _ = train_mock(
        DROPOUT, tmp_path / "alone", "--steps", "6", "--quiet", "model.dropout_rate=0.5"
    )
    np.testing.assert_allclose(
        alone.runs[0].batch_losses, result.runs[2].batch_losses, rtol=1e-5, atol=1e-6
    )
    assert alone.runs[0].test_loss == pytest.approx(result.runs[2].test_loss, rel=1e-5)


@pytest.mark.slow  # minutes of CPU in all: .ci/run runs it
def test_a_structural_sweep_trains_in_groups_with_one_table_mock_data(tmp_path, capsys):
    result, saved = train_mock(
        RELU, tmp_path, "--steps", "3", "model.hidden=[16],[32]", "optimizer=adam,adamw"
    )
    assert [(r["group"], r["hparams"]) for r in saved["runs"]] == [
        (0, {"model.hidden": [16], "optimizer": "adam"}),
        (1, {"model.hidden": [16], "optimizer": "adamw"}),
        (2, {"model.hidden": [32], "optimizer": "adam"}),
        (3, {"model.hidden": [32], "optimizer": "adamw"}),
    ]
    assert [r["run"] for r in saved["runs"]][:2] == [
        "hidden_16-optimizer_adam-lr_0.001-seed_0",
        "hidden_16-optimizer_adamw-lr_0.001-seed_0",
    ]
    assert [models.count_params(r.params) for r in result.runs] == [12_730] * 2 + [25_450] * 2
    assert [r.member.config.optimizer_name for r in result.runs] == ["adam", "adamw"] * 2
    out = capsys.readouterr().out
    # Each group prints its model summary before it trains; one table at the end.
    assert out.count("Total params: 12,730") == 2 and out.count("Total params: 25,450") == 2
    assert out.count("group ") >= 3 and out.count("best first") == 1
    header = out.split("best first:\n")[1].splitlines()[0].split()
    assert header[:2] == ["model.hidden", "optimizer"]


def test_a_setting_refused_only_when_built_is_one_line_before_anything_is_created(tmp_path):
    with pytest.raises(ConfigError) as error:
        experiment.train_and_evaluate(
            RELU, ["optimizer.mu_dtype=abc", "steps=1"], logdir=str(tmp_path / "logs")
        )
    assert str(error.value) == (
        "optimizer adam (registered in mnist_jax.optim) cannot be built or run from these "
        "settings (TypeError: data type 'abc' not understood); check the optimizer.* values given"
    )
    assert not (tmp_path / "logs").exists()


def test_a_list_setting_written_as_a_sweep_of_numbers_names_the_list_meant():
    with pytest.raises(ConfigError) as error:
        sweep.check_lists(RELU, overrides.parse_all(["model.hidden=200,100"]))
    assert str(error.value) == (
        "model.hidden takes a bracketed list: model.hidden=[200,100] "
        "(several lists sweep: model.hidden=[200,100],[...])"
    )
    sweep.check_lists(RELU, overrides.parse_all(["model.hidden=[200,100],[64]", "lr=1e-3,1e-2"]))
