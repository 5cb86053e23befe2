"""What TensorBoard's dashboards show a student, read back with TensorBoard's own backend (the
HParams plugin's session groups, the event readers): a search's chosen member's test figures
in its runs and its HParams row, the columns that tell experiments apart in one log dir, and
the parallel-coordinates view keeping every session. What these look like in Chromium is
described, with screenshots, in docs/tensorboard.md."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from mock_run import argv_with
from tensorboard import context
from tensorboard.backend.event_processing import event_accumulator, plugin_event_multiplexer
from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

from experiments import (
    five_layer_relu,
    five_layer_relu_dropout,
    five_layer_relu_lrdecay,
    five_layer_relu_lrdecay_dropout,
    five_layer_sigmoid,
)
from mnist_jax import cli, experiment, hparams_logs, writer
from mnist_jax.results import Epoch
from mnist_jax.writer import RunWriter

ALL_STATUSES = [
    api_pb2.STATUS_UNKNOWN,
    api_pb2.STATUS_SUCCESS,
    api_pb2.STATUS_FAILURE,
    api_pb2.STATUS_RUNNING,
]


def session_metrics(logdir) -> dict[str, dict[str, float]]:
    """Each HParams row (trial ID) with its metric values, as the dashboard's table gets them."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = MultiplexerDataProvider(multiplexer, str(logdir))
    tb = backend_context.Context(base_plugin.TBContext(data_provider=provider))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=1000, allowed_statuses=ALL_STATUSES
    )
    response = list_session_groups.Handler(context.RequestContext(), tb, "", request).run()
    return {
        g.name: {f"{m.name.group}/{m.name.tag}": m.value for m in g.metric_values}
        for g in response.session_groups
    }


def scalars(event_dir) -> dict[str, list[tuple[int, float]]]:
    events = event_accumulator.EventAccumulator(str(event_dir))
    events.Reload()
    return {t: [(e.step, e.value) for e in events.Scalars(t)] for t in events.Tags()["scalars"]}


def shown_by_default(logdir) -> tuple[list[str], list[str]]:
    """The hparams and metrics the dashboard ticks when it opens: TensorBoard's backend sorts
    the hparams by `differs` (true first), then by name; its frontend ticks the first five of
    each (TensorBoard 2.21)."""
    record = hparams_logs.read_experiment(str(logdir / hparams_logs.EXPERIMENT_FILE))
    hparams = sorted(record.hparam_infos, key=lambda h: (not h.differs, h.name))[:5]
    metrics = [f"{m.name.group}/{m.name.tag}" for m in record.metric_infos[:5]]
    return [h.name for h in hparams], metrics


def test_a_run_without_test_figures_has_no_test_run_and_the_chosen_gets_one(tmp_path):
    """A search's members are never evaluated on the test set: no empty `test` run for them;
    the chosen one's figures, evaluated after training, land in a `test` run of its own."""
    run = RunWriter(str(tmp_path / "run"), {})
    run.write_epoch(Epoch(1, {"loss": 1.0, "val_loss": 1.5, "val_accuracy": 0.5}, seconds=1.0))
    run.close()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "config.json",
        "train",
        "validation",
    ]
    last = Epoch(1, {"loss": 1.0, "test_loss": 1.25, "test_accuracy": 0.75}, seconds=1.0)
    final = {"class_accuracy": np.array([0.5, 1.0]), "confusion_matrix": np.eye(2) * 3}
    writer.write_chosen(str(tmp_path / "run"), last, final)
    test = scalars(tmp_path / "run" / "test")
    assert test["epoch_accuracy"] == [(1, 0.75)] and test["epoch_loss"] == [(1, 1.25)]
    assert test["class_accuracy/1"] == [(1, 1.0)] and "epoch_val_loss" not in test
    images = event_accumulator.EventAccumulator(str(tmp_path / "run" / "test"))
    images.Reload()
    assert images.Tags()["images"] == ["confusion_matrix"]


def test_a_random_searchs_choice_shows_its_test_figures_in_tensorboard_mock_data(tmp_path):
    out, logdir = tmp_path / "out.json", tmp_path / "logs"
    flags = ["--batch-size", "20", "--logdir", str(logdir), "--json", str(out), "--quiet"]
    draws = ["lr=loguniform(1e-4,1e-1)", "model.hidden=[16]", "val_split=40"]
    argv = argv_with(flags, ["--epochs", "1", "--samples", "3", *draws])
    with tfds.testing.mock_data(num_examples=120):
        result = cli.main(five_layer_relu.CONFIG, argv)
    saved = json.loads(out.read_text())
    chosen = result.chosen
    assert chosen is not None and saved["search"]["test_accuracy"] is not None
    test = scalars(f"{chosen.run_dir}/test")
    assert test["epoch_accuracy"] == [(1, pytest.approx(saved["search"]["test_accuracy"]))]
    assert {f"class_accuracy/{c}" for c in range(10)} <= test.keys()
    others = [r for r in result.runs if r is not chosen]
    assert len(others) == 2 and all(
        not (logdir / "five_layer_relu" / r.run_dir.rsplit("/", 1)[1] / "test").exists()
        for r in others
    )
    rows = session_metrics(logdir)
    row = next(v for name, v in rows.items() if name.startswith(chosen.run_dir.rsplit("/")[-1]))
    assert row["test/epoch_accuracy"] == pytest.approx(saved["search"]["test_accuracy"])
    assert sum("test/epoch_accuracy" in v for v in rows.values()) == 1
    assert all("validation/epoch_accuracy" in v for v in rows.values())
    # Ticked by default: columns every row has, so parallel coordinates draws all three.
    _, metrics = shown_by_default(logdir)
    assert metrics and not any(m.startswith("test/") for m in metrics)


def test_the_hparams_columns_shown_tell_the_tutorials_experiments_apart(tmp_path):
    """Four experiments' sessions in one log dir share a trial ID's first 17 characters (the
    dashboard's cell width): the columns ticked by default hold what differs between them."""
    modules = [
        five_layer_sigmoid,
        five_layer_relu_lrdecay,
        five_layer_relu_lrdecay_dropout,
        five_layer_relu_dropout,
    ]
    named = [("test", "epoch_accuracy"), ("train", "epoch_loss")]
    rows = {}
    for module in modules:
        args = cli.parse(cli.parser(module.CONFIG), ["--lr", "0.003"])
        _, population = cli.settings(module.CONFIG, args, experiment.Options())
        members = [hparams_logs.session_hparams(module.CONFIG.name, m) for m in population.members]
        hparams_logs.write_experiment(str(tmp_path), members, named)
        rows |= {module.CONFIG.name: members[0]}
    hparams, _ = shown_by_default(tmp_path)
    assert {"experiment", "model.activation", "model.dropout_rate", "schedule"} <= set(hparams)
    seen = {tuple(json.dumps(row[h]) for h in hparams) for row in rows.values()}
    assert len(seen) == len(modules)  # each experiment's row reads differently
    assert all(h in row for h in hparams for row in rows.values())  # every row has each column


def test_logs_that_cannot_be_written_at_the_end_never_stop_the_results_mock_data(
    tmp_path, monkeypatch, capsys
):
    """The chosen member's test figures are written after training: a full log disk then says
    so in one line (exit 1), and the JSON on another disk is still written."""

    def full(*args):
        raise writer.LogWriteError("cannot write TensorBoard logs in LOGS: No space left on device")

    monkeypatch.setattr(writer, "write_chosen", full)
    out = tmp_path / "out.json"
    flags = ["--batch-size", "20", "--logdir", str(tmp_path / "logs"), "--json", str(out)]
    argv = argv_with(flags, ["--steps", "2", "--samples", "2", "model.hidden=[16]", "val_split=40"])
    argv += ["lr=loguniform(1e-4,1e-1)", "--quiet"]
    with tfds.testing.mock_data(num_examples=120), pytest.raises(SystemExit) as stopped:
        cli.main(five_layer_relu.CONFIG, argv)
    assert stopped.value.code == 1
    assert "No space left on device" in capsys.readouterr().err
    assert json.loads(out.read_text())["search"]["test_accuracy"] is not None
