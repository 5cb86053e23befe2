"""`init_from=CHECKPOINT_DIR`: members start from another run's parameters (on another dataset of
the same image shape), a fresh optimizer state and step; which source member each takes; a
layer missing, added or of another shape refused before training, in one line naming it; the
source recorded in config.json, JSON, CSV, HParams and the checkpoint."""

import csv
import json
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from trained_runs import mock_run

import mnist_jax
from mnist_jax import cli, init_from, progress, sweep, trained
from mnist_jax.config import Config, ConfigError
from mnist_jax.experiment import model_of
from mnist_jax.overrides import parse_all
from mnist_jax.spec import train_spec

RELU = Config(name="relu", model_name="mlp", model={"hidden": [16]}, epochs=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """A checkpoint of two members (seeds 0 and 1) on mock MNIST."""
    workdir = tmp_path_factory.mktemp("source")
    mock_run(workdir, RELU, "--seed", "0,1")
    return str(workdir / "ckpt")


def members(source: str, *overrides: str) -> list[sweep.Member]:
    given = parse_all([f"init_from={source}", *overrides])
    return init_from.resolve(sweep.expand(RELU, given), model_of)


def test_member_m_starts_from_member_m_when_the_counts_agree_else_from_member_0(source):
    assert [m.config.init_from_member for m in members(source, "seed=5,6")] == [0, 1]
    assert [m.config.init_from_member for m in members(source, "seed=5,6,7")] == [0, 0, 0]
    assert [m.config.init_from_member for m in members(source, "init_from.member=1")] == [1]
    with pytest.raises(ConfigError, match=r"init_from.member=2: .* holds members 0 to 1"):
        members(source, "init_from.member=2")


def test_a_relative_path_or_one_with_home_is_made_absolute(source, monkeypatch):
    folder = Path(source).parent
    monkeypatch.chdir(folder.parent)
    (member,) = members(source.replace(str(folder.parent) + "/", ""))
    assert member.config.init_from == source
    monkeypatch.setenv("HOME", str(folder))
    (member,) = members("~/ckpt")
    assert member.config.init_from == source


def test_the_state_takes_the_parameters_and_a_fresh_optimizer_state(source):
    chosen = members(source, "seed=5,6")
    spec = train_spec(chosen[0].config, [m.config for m in chosen])
    mesh = trained.one_device_mesh()
    fresh = progress.initial_state(spec, mesh, chosen, (28, 28, 1))
    started = init_from.start(spec, mesh, chosen, fresh)
    saved = mnist_jax.load(source).members
    for m in range(2):
        for ours, theirs in zip(
            jax.tree.leaves(trained.member_params(started.params, m)),
            jax.tree.leaves(saved[m].params),
            strict=True,
        ):
            np.testing.assert_array_equal(ours, theirs)
    assert np.all(np.asarray(started.step) == 0)
    mu = started.opt_state.inner_state[0].mu  # Adam's first moment: zeros, as a new run's
    assert all(not np.asarray(leaf).any() for leaf in jax.tree.leaves(mu))
    np.testing.assert_array_equal(started.hparams["lr"], fresh.hparams["lr"])


def test_a_run_on_another_dataset_starts_from_the_source_and_records_it_mock_data(source, tmp_path):
    out = ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")]
    with tfds.testing.mock_data(num_examples=200):
        result = cli.main(
            RELU,
            ["--init-from", source, "dataset=fashion_mnist", "--batch-size", "20", "--seed", "0,1",
             "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt"),
             "--quiet", *out],
        )  # fmt: skip
    assert [r.member.config.init_from_member for r in result.runs] == [0, 1]
    (run,) = json.loads((tmp_path / "r.json").read_text())["runs"][:1]
    assert (run["config"]["init_from"], run["config"]["init_from_member"]) == (source, 0)
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["init_from"], r["init_from.member"]) for r in rows] == [(source, "0"), (source, "1")]
    config = json.loads((Path(result.runs[1].run_dir) / "config.json").read_text())
    assert (config["init_from"], config["init_from_member"]) == (source, 1)
    record = json.loads((tmp_path / "ckpt" / "run.json").read_text())
    assert [m["config"]["init_from_member"] for m in record["members"]] == [0, 1]
    assert result.runs[0].member.shown()["init_from"] == source  # HParams' column
    assert len(sweep.groups([r.member for r in result.runs])) == 1  # one program still


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.hidden=[8]", "layer dense_1's bias is (16,) in the checkpoint but (8,)"),
        ("model.hidden=[16,8]", "layer dense_2's bias is (10,) in the checkpoint but (8,)"),
    ],
)
def test_a_layer_of_another_shape_is_refused_before_training_in_one_line(
    source, tmp_path, capsys, override, message
):
    with pytest.raises(SystemExit) as info:
        cli.main(RELU, [f"init_from={source}", override, "--logdir", str(tmp_path / "logs")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "logs").exists()  # nothing trained, nothing written


def test_a_layer_missing_or_added_is_refused_naming_it(source):
    (member,) = members(source)
    params = mnist_jax.load(source).members[0].params
    model = model_of(member.config)
    extra = {**params, "dense_9": {"bias": np.zeros(3, np.float32)}}
    with pytest.raises(ConfigError, match="layer dense_9 \\(bias\\) of the checkpoint is not"):
        init_from.check_layers(member.config, model, extra)
    fewer = {k: v for k, v in params.items() if k != "dense_2"}
    with pytest.raises(
        ConfigError, match="layer dense_2 \\(bias \\(10,\\)\\) of this model is not"
    ):
        init_from.check_layers(member.config, model, fewer)


def test_a_folder_that_is_no_checkpoint_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="holds no checkpoint"):
        members(str(tmp_path))


@pytest.mark.parametrize("path", ["/abs/runs/a", "~/runs/a", "../runs/a", "./a", "runs/a-1.b"])
def test_a_path_as_typed_is_a_value(path):
    (override,) = parse_all([f"init_from={path}"])
    assert override.values == (path,)
