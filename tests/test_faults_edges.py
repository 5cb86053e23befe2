"""Faults at the edges (issue 32): a signal to the report, datasets that cannot be trained on,
very long values, half-written state, damaged records, misspelt names. Each test makes the
fault for real where it can (a signal to a process, a read-only folder, a file of the wrong
shape) and checks the one-line answer and that nothing written before is lost."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
import test_data
import test_plots
from mock_run import argv_with

from experiments import five_layer_relu
from mnist_jax import cli, data, datasets, evaluate, experiment, interrupt, plots
from mnist_jax.config import Config, ConfigError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
SHORT = ["--batch-size", "20"]  # 200 mock examples: 10 steps an epoch

small_mnist = test_data.small_mnist  # a fixture: four small IDX files

QUICK_REPORT = """
import sys
import tensorflow_datasets as tfds
from experiments.report import main
with tfds.testing.mock_data(num_examples=300):  # the quick report's 3 steps: one epoch
    main.main(sys.argv[1:])
"""


def test_a_signal_inside_a_run_reaches_the_stop_around_it():
    """A report trains many runs, each with its own stop: the signal one of them gets must stop
    the report too, and one received between runs must stop the next after its first epoch."""
    with interrupt.StopOnSignal() as outer:
        with interrupt.StopOnSignal() as inner:
            os.kill(os.getpid(), signal.SIGTERM)
        assert inner.signum == outer.signum == signal.SIGTERM
        with interrupt.StopOnSignal() as later:
            assert later.signum == signal.SIGTERM
            with pytest.raises(KeyboardInterrupt):  # the second signal abandons at once
                os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.slow  # a real process training three of the report's sweeps on mock data
def test_sigterm_stops_the_report_keeps_the_finished_sweeps_and_its_temp_folder_goes_mock_data(
    tmp_path,
):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "R.md"
    argv = ["--quick", "--out", str(out), "--data-dir", str(tmp_path / "tfds")]
    proc = subprocess.Popen(
        [sys.executable, "-c", QUICK_REPORT, *argv],
        env={**ENV, "TMPDIR": str(tmp)}, cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    started = 0
    for line in proc.stdout:
        started += line.startswith("== ")
        if started == 3:  # two sweeps are done, the third has begun
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    # The third sweep stops at once in its set-up, or, once training, finishes its one epoch.
    found = re.search(r"stopped: SIGTERM after (\d+) of 12 sweeps", last)
    assert found and int(found.group(1)) in (2, 3), err
    done = int(found.group(1))
    assert str(tmp_path / "R.partial.md") in last, err
    text = (tmp_path / "R.partial.md").read_text()
    assert f"Partial: stopped by SIGTERM after {done} of 12 sweeps" in text
    assert "`softmax`" in text and "`five_layer_relu`" not in text  # its two settings, first
    assert ("`five_layer_sigmoid`" in text) == (done == 3)
    assert not out.exists()
    assert list(tmp.iterdir()) == []  # the quick report's temporary log folder is removed


def test_prepare_leaves_no_temporary_folder_in_tmpdir(small_mnist, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # $TMPDIR, as tempfile read it
    source, _, checksums = small_mnist
    data.prepare(source, str(tmp_path / "tfds"), checksums=checksums)
    assert list(tmp.iterdir()) == []


def _unfit(train_n=40, test_n=20, nan_at=None, labels_short_by=0):
    """A 3-class dataset of 4x4 float images, made unfit for training as asked."""
    rng = np.random.default_rng(0)
    splits = []
    for n in (train_n, test_n):
        images = rng.random((n, 4, 4)).astype(np.float32)
        splits.append([images, rng.integers(0, 3, n)])
    if nan_at is not None:
        splits[0][0][nan_at, 1, 2] = np.nan
    splits[0][1] = splits[0][1][: train_n - labels_short_by]
    return datasets.from_arrays(tuple(splits[0]), tuple(splits[1]), ["a", "b", "c"])


@pytest.mark.parametrize(
    "name, unfit, expected",
    [
        ("no_test_examples", {"test_n": 0}, "split test: no examples"),
        ("nan_pixels", {"nan_at": 7}, "split train: 1 of 40 images hold NaN or infinite values"),
        (
            "short_labels",
            {"labels_short_by": 3},
            "split train: labels of shape (37,) for 40 images",
        ),
    ],
)
def test_a_dataset_that_cannot_be_trained_on_is_refused_in_one_line_before_anything_is_created(
    tmp_path, capsys, name, unfit, expected
):
    datasets.DATASETS.register(name, _unfit(**unfit))
    config = Config(name="unfit", model_name="mlp", dataset=name, model={"hidden": [8]}, epochs=1)
    ckpt, logs = tmp_path / "ckpt", tmp_path / "logs"
    argv = ["--checkpoint-dir", str(ckpt), "--logdir", str(logs), "--batch-size", "10"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(config, [*argv, "--json", str(tmp_path / "out.json"), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"dataset {name}, {expected}" in err, err
    assert not ckpt.exists() and not logs.exists() and not (tmp_path / "out.json").exists()


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint dir of two epochs of five_layer_relu on mock data."""
    workdir = tmp_path_factory.mktemp("trained")
    argv = ["--logdir", str(workdir / "logs"), "--checkpoint-dir", str(workdir / "ckpt")]
    with tfds.testing.mock_data(num_examples=200):
        cli.main(five_layer_relu.CONFIG, [*argv, *SHORT, "--epochs", "2", "--quiet"])
    return workdir / "ckpt"


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda record: [record], "it holds [{"),
        (lambda record: {**record, "members": {}}, "its 'members' is {}, not a JSON array"),
        (lambda record: {k: v for k, v in record.items() if k != "name"}, "its 'name' is null"),
        (lambda record: {**record, "members": [1]}, "member 1 is 1, not a config"),
        (lambda record: {**record, "members": [{"config": 3, "hparams": {}}]}, "member 1's config"),
        (lambda record: json.dumps(record)[:50], "it cannot be read"),
    ],
)
def test_a_damaged_run_json_is_refused_in_one_line_by_resume_and_evaluate_mock_data(
    trained_checkpoint, tmp_path, capsys, damage, why
):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint, ckpt)
    damaged = damage(json.loads((ckpt / "run.json").read_text()))
    (ckpt / "run.json").write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    before = sorted(p.relative_to(ckpt) for p in ckpt.rglob("*"))
    resume = ["--checkpoint-dir", str(ckpt), "--resume", "--logdir", str(tmp_path / "logs")]
    with tfds.testing.mock_data(num_examples=200):
        for command in (
            lambda: cli.main(five_layer_relu.CONFIG, [*resume, *SHORT, "--epochs", "3"]),
            lambda: evaluate.main([str(ckpt)]),
        ):
            with pytest.raises(SystemExit) as exit_info:
                command()
            assert exit_info.value.code == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            assert f"{ckpt / 'run.json'} is damaged ({why}" in err, err
            assert "start it over with --overwrite" in err, err
    assert sorted(p.relative_to(ckpt) for p in ckpt.rglob("*")) == before  # nothing lost


TOO_MANY_OPEN_FILES = """
import os, resource, sys
from pathlib import Path
import orbax.checkpoint as ocp
from test_checkpoint import run

real_save = ocp.CheckpointManager.save

def save_with_three_files_left(manager, step, *args, **kwargs):
    if step == 1:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 3, hard))
    return real_save(manager, step, *args, **kwargs)

ocp.CheckpointManager.save = save_with_three_files_left
run("five_layer_relu", Path(sys.argv[1]), "--epochs", "2")
"""


@pytest.mark.slow  # a process of its own
def test_too_many_open_files_at_the_first_save_is_one_line_and_leaves_no_half_epoch_mock_data(
    tmp_path,
):
    """The open-file limit is lowered just before the first save (epoch 1's), in a process of
    its own: orbax then fails with EMFILE, its event loops half made."""
    env = {**ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    env["MNIST_JAX_COMPILE_CACHE"] = "off"  # the next epoch trains while the save fails: no
    # cache file to read with three descriptors left (JAX would warn of each)
    done = subprocess.run(
        [sys.executable, "-c", TOO_MANY_OPEN_FILES, str(tmp_path)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # no asyncio noise after it
    assert "could not be written" in done.stderr and "(Too many open files)" in done.stderr
    assert "a higher `ulimit -n`" in done.stderr and "disk has room" not in done.stderr
    assert not list((tmp_path / "ckpt").rglob("*orbax-checkpoint-tmp*"))
    assert (tmp_path / "ckpt" / "run.json").exists()


def test_runs_of_two_losses_in_one_figure_are_told_apart_by_label_and_axis_mock_logs(
    tmp_path, monkeypatch
):
    logdir = tmp_path / "logs"
    for lr, loss in [(0.5, "categorical"), (0.005, "binary")]:
        test_plots.write_mock_run(logdir, "softmax", lr, seed=0, overfit=False)
        config_json = logdir / "softmax" / f"lr_{lr}-seed_0" / "config.json"
        config_json.write_text(
            json.dumps({**json.loads(config_json.read_text()), "loss_name": loss})
        )
    test_plots.write_mock_run(logdir, "five_layer_relu", 0.003, seed=0, overfit=False)
    figures = {}
    monkeypatch.setattr(
        plots, "save", lambda fig, path: figures.setdefault(path.name, fig) and path
    )
    plots.plot_logdir(logdir, tmp_path / "figures")
    for name in ("softmax_loss.png", "softmax_batch_loss.png"):
        (ax,) = figures[name].axes
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert {"lr_0.5-seed_0, categorical loss", "lr_0.005-seed_0, binary loss"} <= set(labels)
        assert "binary or categorical" in ax.get_ylabel() and "not comparable" in ax.get_ylabel()
    (ax,) = figures["test_loss.png"].axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        "five_layer_relu (categorical loss)",
        "softmax (binary loss)",
        "softmax (categorical loss)",
    ]
    colours = [line.get_color() for line in ax.get_lines()]
    assert len(set(colours)) == 3
    (ax,) = figures["five_layer_relu_loss.png"].axes
    assert ax.get_ylabel() == "categorical cross-entropy"  # one loss: its name on the axis


@pytest.mark.parametrize("outdir", ["under_a_file", "read_only"])
def test_plots_into_a_folder_that_cannot_be_written_is_one_line(tmp_path, capsys, outdir):
    logdir = tmp_path / "logs"
    test_plots.write_mock_run(logdir, "softmax", 0.5, seed=0, overfit=False)
    (tmp_path / "a_file").write_text("")
    target = tmp_path / "a_file" / "figures"
    if outdir == "read_only":
        target = tmp_path / "checkout"
        target.mkdir()
        if os.geteuid() == 0:  # root writes through permissions: a read-only mount stops it
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "t", str(target)])
            if done.returncode:
                pytest.skip("cannot mount a read-only tmpfs here")
        else:
            target.chmod(0o555)
        target = target / "figures"
    try:
        with pytest.raises(SystemExit) as exit_info:
            plots.main([str(logdir), "--outdir", str(target), "--architectures"])
    finally:
        if outdir == "read_only" and os.geteuid() == 0:
            subprocess.run(["umount", str(target.parent)], check=True)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write the figures in {target}" in err, err
    assert "--outdir" in err


@pytest.mark.parametrize(
    "argv, prog",
    [
        (["-m", "experiments.five_layer_reul"], "python -m experiments.five_layer_reul"),
        (["-m", "experiments", "five_layer_reul"], "python -m experiments"),
    ],
)
def test_a_misspelt_experiment_gets_a_suggestion_in_one_line(tmp_path, argv, prog):
    done = subprocess.run(
        [sys.executable, *argv, "--epochs", "1"],
        env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{prog}: error: "), done.stderr
    assert "did you mean five_layer_relu?" in done.stderr and "softmax" in done.stderr


def test_the_summary_line_says_the_real_data_tests_did_not_run_and_how_to_run_them(tmp_path):
    """This suite's conftest in a checkout with no MNIST beside it, run as the README says."""
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "tests" / "conftest.py")
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_on_real_mnist(mnist_data_dir):\n    pass\n\n\ndef test_plain():\n    pass\n"
    )
    env = {k: v for k, v in ENV.items() if k not in ("MNIST_JAX_TEST_DATA_DIR", "TFDS_DATA_DIR")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        env={**env, "HOME": str(tmp_path)}, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "1 passed, 1 skipped, 1 real-MNIST tests did not run (no MNIST found: " in last, last
    assert "MNIST_JAX_TEST_DATA_DIR=DIR" in last and "mnist_jax.data prepare" in last, last


small_mnist_as_canonical = test_data.small_mnist_as_canonical  # a fixture: they stand for MNIST


def test_prepare_says_what_to_pass_next(small_mnist_as_canonical, tmp_path, monkeypatch, capsys):
    source, _, _ = small_mnist_as_canonical
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data_dir = str(tmp_path / "my data")
    assert data.main(["prepare", str(source), "--data-dir", data_dir]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"Pass --data-dir '{data_dir}' to every command" in last, last
    assert f"TFDS_DATA_DIR='{data_dir}'" in last
    assert last.endswith(f"-m experiments.softmax --data-dir '{data_dir}'"), last
    assert data.main(["prepare", str(source), "--data-dir", data_dir]) == 0  # already there
    assert f"Pass --data-dir '{data_dir}'" in capsys.readouterr().out
    monkeypatch.setenv("TFDS_DATA_DIR", data_dir)  # where every command looks by itself
    assert data.main(["prepare", str(source)]) == 0
    out = capsys.readouterr().out
    assert "finds it there by itself" in out and "--data-dir" not in out, out


def test_evaluate_reads_from_the_data_dir_the_checkpoint_records(
    trained_checkpoint, mnist_data_dir, tmp_path, monkeypatch, capsys
):
    """The checkpoint trained on mock data; its record names the real MNIST's data dir, as a
    run given `--data-dir` records it, and evaluate needs no `--data-dir`."""
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/tensorflow_datasets to fall back on
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint, ckpt)
    with pytest.raises(SystemExit):  # without the record's data dir: nowhere to read MNIST
        evaluate.main([str(ckpt)])
    capsys.readouterr()
    record = json.loads((ckpt / "run.json").read_text())
    (ckpt / "run.json").write_text(json.dumps({**record, "data_dir": mnist_data_dir}))
    result = evaluate.main([str(ckpt)])
    assert [len(r.history) for r in result.runs] == [2]
    assert "test set of mnist" in capsys.readouterr().out


LONG = "a" * 100_000


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--checkpoint-dir", "{tmp}/" + LONG], "a name in it has 100000 characters"),
        (["--logdir", "{tmp}/" + LONG], "a name in it has 100000 characters"),
        (["--json", "{tmp}/" + LONG + ".json"], "a name in it has 100005 characters"),
        (["--csv", "{tmp}/x/" + LONG], "a name in it has 100000 characters"),
        (["seed=" + "1" * 100_000], "a whole number of 100000 digits"),
        (["--seed", "1" * 100_000], "a whole number of 100000 digits"),
    ],
)
def test_very_long_values_are_refused_in_one_short_line_before_anything_is_created(
    tmp_path, capsys, flags, expected
):
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    argv = argv_with(["--logdir", str(tmp_path / "logs"), *SHORT, "--quiet"], flags)
    with pytest.raises(SystemExit) as exit_info, tfds.testing.mock_data(num_examples=200):
        cli.main(five_layer_relu.CONFIG, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and len(err) < 400, err[:500]
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_dir_too_long_for_the_system_is_a_config_error_in_the_library(tmp_path):
    with pytest.raises(ConfigError, match="cannot hold checkpoints") as error:
        experiment.train_and_evaluate(
            five_layer_relu.CONFIG, checkpoint_dir=str(tmp_path / LONG), logdir=None
        )
    assert len(str(error.value)) < 400
    assert list(tmp_path.iterdir()) == []


def test_memory_running_out_under_ulimit_v_is_one_line(tmp_path):
    """A real limit on the address space (`ulimit -v` 4 GiB, set by the process itself), then an
    8 GiB array."""
    gib = 2**30
    source = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({4 * gib}, resource.RLIM_INFINITY))\n"
        f"import mnist_jax, numpy\nnumpy.ones({8 * gib}, numpy.uint8)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", source],
        env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("python: stopped: out of memory (Unable to allocate 8.00 GiB")
    assert "may use 4.0 GiB of address space (ulimit -v): raise that limit" in done.stderr


@pytest.mark.parametrize("flag", ["--json", "--csv"])
def test_a_results_file_named_as_a_missing_folder_is_refused_before_training_mock_data(
    tmp_path, capsys, flag
):
    argv = ["--logdir", str(tmp_path / "logs"), *SHORT, "--quiet", flag, f"{tmp_path}/out/"]
    with pytest.raises(SystemExit) as exit_info, tfds.testing.mock_data(num_examples=200):
        cli.main(five_layer_relu.CONFIG, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a directory, expected a file name" in err, err
    assert list(tmp_path.iterdir()) == []
