"""The plot command on mock logs: two experiments, one a three-run learning-rate sweep."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from matplotlib.image import imread
from tensorboardX import SummaryWriter

from experiments.five_layer_relu import CONFIG
from mnist_jax import cli, plots

EPOCHS = 5
BATCHES_PER_EPOCH = 20
SWEEP_LRS = (0.0003, 0.001, 0.003)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_mock_run(logdir, experiment, lr, seed, overfit, hparams=None):
    """Logs laid out as the trainer writes them, with made-up but plausible curves."""
    run = f"lr_{lr}-seed_{seed}"
    path = logdir / experiment / run
    rng = np.random.default_rng(seed)
    speed = (lr / 0.001) ** 0.5
    with SummaryWriter(str(path / "train")) as train, SummaryWriter(str(path / "test")) as test:
        for epoch in range(1, EPOCHS + 1):
            loss = 0.1 + 1 / (speed * epoch)
            test_loss = loss + (0.02 * epoch**2 if overfit else 0.05)
            for writer, values in (
                (train, {"loss": loss, "accuracy": 1 - loss / 4, "binary_accuracy": 1 - loss / 20}),
                (test, {"loss": test_loss, "accuracy": 0.9 + 10 * lr, "binary_accuracy": 0.99}),
            ):
                for tag, value in values.items():
                    writer.add_scalar(f"epoch_{tag}", value, epoch)
        for step in range(1, EPOCHS * BATCHES_PER_EPOCH + 1):
            loss = 2.3 * np.exp(-speed * step / 30) + 0.1 + 0.1 * rng.random()
            train.add_scalar("batch_loss", loss, step)
            train.add_scalar("batch_accuracy", 1 - loss / 2.3, step)
            train.add_scalar("batch_binary_accuracy", 1 - loss / 23, step)
            train.add_scalar("batch_learning_rate", lr, step)
    config = {
        "experiment": experiment,
        "run": run,
        "lr": lr,
        "seed": seed,
        "hparams": hparams or {},
    }
    (path / "config.json").write_text(json.dumps({**config, "model": experiment, "epochs": EPOCHS}))


@pytest.fixture
def mock_logdir(tmp_path):
    logdir = tmp_path / "logs"
    for lr in SWEEP_LRS:  # one command's sweep
        write_mock_run(logdir, "five_layer_relu", lr, seed=0, overfit=True, hparams={"lr": lr})
    write_mock_run(logdir, "five_layer_relu_dropout", 0.001, seed=0, overfit=False)
    return logdir


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _ = imread(path).shape
    assert height > 100 and width > 100


def test_plot_command_on_mock_logs(mock_logdir, tmp_path, capsys):
    outdir = tmp_path / "figures"
    written = plots.main([str(mock_logdir), "--outdir", str(outdir), "--architectures"])
    names = [
        "five_layer_relu_loss.png",
        "five_layer_relu_batch_loss.png",
        "five_layer_relu_lr_sweep.png",
        "five_layer_relu_dropout_loss.png",
        "five_layer_relu_dropout_batch_loss.png",
        "test_loss.png",
        "architecture_softmax_regression.png",
        "architecture_five_layer_mlp_dropout.png",
    ]
    assert sorted(written) == sorted(outdir / name for name in names)
    for path in written:
        assert_png(path)
    assert capsys.readouterr().out.split() == [str(path) for path in written]


def test_find_runs_reads_names_from_config(mock_logdir):
    runs = plots.find_runs(mock_logdir)
    assert [(r.experiment, r.name) for r in runs] == [
        ("five_layer_relu", "lr_0.0003-seed_0"),
        ("five_layer_relu", "lr_0.001-seed_0"),
        ("five_layer_relu", "lr_0.003-seed_0"),
        ("five_layer_relu_dropout", "lr_0.001-seed_0"),
    ]


def test_read_scalars_round_trips_exact_values(tmp_path):
    values = [0.5, 0.25, 1.125, 3.0]  # exact in float32, the precision events store
    with SummaryWriter(str(tmp_path)) as writer:
        for step, value in enumerate(values, start=1):
            writer.add_scalar("loss", value, step)
    steps, read = plots.read_scalars(tmp_path)["loss"]
    assert steps.tolist() == [1, 2, 3, 4]
    assert read.tolist() == values


def test_read_scalars_keeps_every_point_of_a_long_run(tmp_path):
    """TensorBoard's reader samples 10,000 points per tag unless told otherwise."""
    writer = SummaryWriter(str(tmp_path))
    for step in range(1, 12_001):
        writer.add_scalar("batch_loss", step / 8, step)
    writer.close()
    steps, values = plots.read_scalars(tmp_path)["batch_loss"]
    assert steps.tolist() == list(range(1, 12_001))
    assert values.tolist() == [step / 8 for step in range(1, 12_001)]


def test_smooth_is_tensorboards_debiased_ema():
    assert plots.smooth(np.full(5, 2.0)).tolist() == pytest.approx([2.0] * 5)
    assert plots.smooth(np.array([1.0, 0.0]), weight=0.5).tolist() == pytest.approx([1.0, 1 / 3])


@pytest.mark.parametrize("make_dir", [True, False])
def test_clear_error_without_runs(tmp_path, capsys, make_dir):
    logdir = tmp_path / "logs"
    if make_dir:
        logdir.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        plots.main([str(logdir), "--outdir", str(tmp_path / "figures")])
    assert exit_info.value.code == 1
    message = capsys.readouterr().err
    assert message.startswith("error:") and str(logdir) in message
    assert "Traceback" not in message


def test_plot_command_on_logs_a_short_mock_data_run_wrote(tmp_path):
    """The trainer's own logs (a two-rate sweep on tfds mock data), not hand-written ones."""
    logdir = tmp_path / "logs"
    flags = ["--steps", "12", "--batch-size", "20", "--lr", "1e-3,1e-2", "--quiet"]
    with tfds.testing.mock_data(num_examples=120):
        cli.main(CONFIG, [*flags, "--logdir", str(logdir)])
    written = plots.main([str(logdir), "--outdir", str(tmp_path / "figures")])
    names = sorted(path.name for path in written)
    assert names == [
        "five_layer_relu_batch_loss.png", "five_layer_relu_loss.png",
        "five_layer_relu_lr_sweep.png",
    ]  # fmt: skip
    for path in written:
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_sweep_figures_per_swept_key_never_join_runs_of_other_configs(tmp_path):
    logdir = tmp_path / "logs"
    for rate in (0.0, 0.25, 0.5):  # a 3-epoch dropout sweep ...
        write_mock_run(logdir, "five_layer_relu_dropout", 0.001, seed=0, overfit=rate == 0.0)
        run = logdir / "five_layer_relu_dropout" / "lr_0.001-seed_0"
        renamed = run.with_name(f"dropout_rate_{rate}-lr_0.001-seed_0")
        run.rename(renamed)
        config = json.loads((renamed / "config.json").read_text())
        config |= {"run": renamed.name, "model": {"dropout_rate": rate}, "epochs": 3}
        config |= {"hparams": {"model.dropout_rate": rate}}
        (renamed / "config.json").write_text(json.dumps(config))
    write_mock_run(logdir, "five_layer_relu_dropout", 0.001, seed=0, overfit=False)  # ... and
    # one 30-epoch run of the same model at rate 0.25: another length, another curve
    config = json.loads(
        (logdir / "five_layer_relu_dropout" / "lr_0.001-seed_0" / "config.json").read_text()
    )
    config |= {"model": {"dropout_rate": 0.25}, "epochs": 30}
    (logdir / "five_layer_relu_dropout" / "lr_0.001-seed_0" / "config.json").write_text(
        json.dumps(config)
    )
    runs = plots.find_runs(logdir)
    epochs = {run.path: plots.read_epochs(run.path) for run in runs}
    points = plots.sweep_points(runs, epochs)
    assert set(points) == {"model.dropout_rate"}  # not the length the commands differ in
    by_length = sorted(points["model.dropout_rate"].values(), key=len)
    assert [sorted(x for x, _ in series) for series in by_length] == [[0.25], [0.0, 0.25, 0.5]]
    written = plots.plot_logdir(logdir, tmp_path / "figures")
    assert tmp_path / "figures" / "five_layer_relu_dropout_model.dropout_rate_sweep.png" in written


def test_settings_separate_commands_differ_in_are_no_sweep_and_folders_stay_apart(tmp_path):
    """The report's layout: `tutorial/E` and `corrected/E`, each a seed sweep, differing in loss,
    pixels and rate between the two commands: two experiments, no sweep figure."""
    logdir = tmp_path / "logs"
    for setting, lr, loss in (("tutorial", 0.005, "binary"), ("corrected", 0.5, "categorical")):
        for seed in (0, 1):
            write_mock_run(logdir / setting, "softmax", lr, seed, False, hparams={"seed": seed})
            path = logdir / setting / "softmax" / f"lr_{lr}-seed_{seed}" / "config.json"
            path.write_text(json.dumps(json.loads(path.read_text()) | {"loss": loss}))
    written = plots.plot_logdir(logdir, tmp_path / "figures")
    assert sorted(p.name for p in written) == [
        "corrected_softmax_batch_loss.png", "corrected_softmax_loss.png",
        "test_loss.png", "tutorial_softmax_batch_loss.png", "tutorial_softmax_loss.png",
    ]  # fmt: skip


def test_a_sweep_figure_fits_its_data_legend_outside_values_as_typed(mock_logdir, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figures.append(fig) or path)
    runs = plots.group_by_experiment(plots.find_runs(mock_logdir), mock_logdir)["five_layer_relu"]
    epochs = {run.path: plots.read_epochs(run.path) for run in runs}
    points = plots.sweep_points(runs, epochs)["lr"]
    points = {"seed=0": [(lr * (1 + 1e-12), acc) for lr, acc in points["seed=0"]]}  # float noise
    plots.plot_sweep("lr", points, mock_logdir / "unused.png", "lr sweep")
    (fig,) = figures
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.0003", "0.001", "0.003"]
    accuracies = [0.9 + 10 * lr for lr in SWEEP_LRS]  # 0.903 to 0.93: not drawn from 0 to 1
    low, high = ax.get_ylim()
    assert min(accuracies) - 0.01 < low < min(accuracies) < max(accuracies) < high
    assert high < max(accuracies) + 0.01
    fig.draw_without_rendering()
    legend, plot = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= plot.x1  # beside the curves, not over them
    assert ax.get_legend().get_texts()[0].get_text() == "seed=0"
