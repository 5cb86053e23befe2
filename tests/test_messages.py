"""What a run says: its own run folders by name, what a sweep varies, and after Ctrl-C the
command that runs it again, spelled with the interpreter that ran it."""

import importlib.machinery
import os
import signal
import sys
import types

import pytest
import tensorflow_datasets as tfds

from experiments import five_layer_relu_dropout, softmax
from mnist_jax import checkpoint_folder, cli, commands, experiment, interrupt, progress


def run_mock(config, tmp_path, *flags) -> str:
    """`cli.main` on mock data, printing (no --quiet)."""
    argv = ["--logdir", str(tmp_path / "logs"), "--batch-size", "20", *flags]
    with tfds.testing.mock_data(num_examples=120):
        cli.main(config, argv)


def test_a_run_and_its_rerun_print_their_own_folders_mock_data(tmp_path, capsys):
    view = f"; view with: {commands.tensorboard(str(tmp_path / 'logs'))}"
    run_mock(softmax.CONFIG, tmp_path, "--steps", "2")  # the program of test_experiments' rerun
    first = capsys.readouterr().out.splitlines()
    run_mock(softmax.CONFIG, tmp_path, "--steps", "2")
    second = capsys.readouterr().out.splitlines()
    folder = tmp_path / "logs" / "softmax"
    assert first.count(f"logs in {folder}/lr_0.5-seed_0{view}") == 2  # at the start and the end
    assert second.count(f"logs in {folder}/lr_0.5-seed_0-2{view}") == 2
    starts = [i for i, line in enumerate(first) if line.startswith(("logs in ", "epoch 1/"))]
    assert first[starts[0]].startswith("logs in ")  # said before training starts


def test_a_sweep_names_what_differs_and_every_run_folder_mock_data(tmp_path, capsys):
    flags = ["--steps", "6", "model.dropout_rate=0,0.25", "--lr", "1e-3,1e-2"]
    run_mock(five_layer_relu_dropout.CONFIG, tmp_path, *flags)  # test_experiments' program
    out = capsys.readouterr().out
    assert "mlp(hidden=[200,100,60,30], activation=relu, dropout_rate={0, 0.25}," in out
    assert "4 run(s) on mnist, seed=0, 1 epoch(s), 6 steps of 20, adam(lr={0.001, 0.01}, " in out
    names = "dropout_rate_0-lr_0.001-seed_0, dropout_rate_0.25-lr_0.001-seed_0, "
    names += "dropout_rate_0-lr_0.01-seed_0, dropout_rate_0.25-lr_0.01-seed_0"
    folder = tmp_path / "logs" / "five_layer_relu_dropout"
    assert out.count(f"logs of 4 runs in {folder}/: {names}; view with: ") == 2


def test_a_long_list_of_run_folders_says_how_many_more():
    dirs = [f"/x/logs/e/lr_{i}-seed_0" for i in range(10)]
    line = progress.where("/x/logs", dirs, "ckpt")
    assert line.startswith("logs of 10 runs in /x/logs/e/: lr_0-seed_0, lr_1-seed_0, ")
    assert "lr_7-seed_0 and 2 more, checkpoints in ckpt; view with: " in line
    assert progress.where(None, [None], None) == "no logs written"


def test_a_run_from_another_folder_names_its_logs_absolute_mock_data(tmp_path, monkeypatch, capsys):
    # `logs/softmax/...` printed in a folder other than the checkout would not name its folder.
    here = tmp_path.resolve()
    monkeypatch.chdir(here)
    with tfds.testing.mock_data(num_examples=120):
        cli.main(softmax.CONFIG, ["--batch-size", "20", "--steps", "2"])  # the default --logdir
    view = f"; view with: {commands.tensorboard(str(here / 'logs'))}"
    assert capsys.readouterr().out.count(f"logs in {here}/logs/softmax/lr_0.5-seed_0{view}") == 2


def test_paths_inside_the_checkout_print_relative_when_run_from_it(monkeypatch):
    monkeypatch.chdir(progress.CHECKOUT)
    run_dir = f"{progress.CHECKOUT}/logs/softmax/lr_0.5-seed_0"
    line = progress.where("logs", [run_dir], "ckpt")
    view = f"; view with: {commands.tensorboard('logs')}"
    assert line == f"logs in logs/softmax/lr_0.5-seed_0, checkpoints in ckpt{view}"
    line = progress.where("../elsewhere", ["/elsewhere/softmax/lr_0.5-seed_0"], None)
    assert line.startswith("logs in /elsewhere/softmax/lr_0.5-seed_0; view with: ")
    assert line.endswith(commands.tensorboard(os.path.abspath("../elsewhere")))


@pytest.fixture
def stopped(monkeypatch):
    """`experiment.run` stopped as a signal stops it: raises what the test puts in."""
    raised = []

    def stop(*args):
        raise raised[0]

    monkeypatch.setattr(experiment, "run", stop)
    return raised


@pytest.mark.parametrize(
    "stop",
    [KeyboardInterrupt(), interrupt.Interrupted(signal.SIGINT, 2, 30)],
    ids=["twice", "after-an-epoch"],
)
def test_ctrl_c_without_checkpoints_says_how_to_run_again(stop, stopped, tmp_path, capsys):
    stopped.append(stop)
    argv = ["--logdir", str(tmp_path / "my logs"), "lr=1e-3,1e-2"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(softmax.CONFIG, argv)
    assert exit_info.value.code == 130
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("python -m experiments.softmax: stopped: ")
    assert err[0].endswith("nothing was saved to resume from. Run it again with:")
    assert err[1] == f"  {commands.python_module('experiments.softmax', *argv)}"
    assert "'" in err[1]  # the folder with a space quoted, as a shell needs it
    hint = "(add --checkpoint-dir DIR to save it as it trains: then --resume continues it)"
    assert err[2] == hint


def test_ctrl_c_without_logs_claims_no_logs_kept(stopped, capsys):
    stopped.append(interrupt.Interrupted(signal.SIGTERM, 2, 30))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(softmax.CONFIG, ["--no-logs"])
    assert exit_info.value.code == 143
    err = capsys.readouterr().err.splitlines()
    assert "logs" not in err[0] and err[0].endswith(
        "nothing was saved to resume from. Run it again with:"
    )


def test_ctrl_c_with_checkpoints_gives_the_command_that_resumes(
    stopped, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(checkpoint_folder, "has_run", lambda directory: True)  # a save was made
    monkeypatch.setattr(checkpoint_folder, "has_saved_epoch", lambda directory: True)
    stopped.append(interrupt.Interrupted(signal.SIGINT, 2, 30))
    argv = ["--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ck")]
    with pytest.raises(SystemExit):
        cli.main(softmax.CONFIG, argv)
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(f"the latest checkpoint is in {tmp_path / 'ck'}. Resume with:")
    assert err[1] == f"  {commands.python_module('experiments.softmax', *argv, '--resume')}"


def test_a_second_ctrl_c_before_the_first_save_says_resume_starts_over(
    stopped, tmp_path, capsys, monkeypatch
):
    """A run abandoned at once before its first save (the default saves once a minute) holds
    its record but no epoch: `--resume` is the command that runs it again, from epoch 1."""
    monkeypatch.setattr(checkpoint_folder, "has_run", lambda directory: True)
    stopped.append(KeyboardInterrupt())
    argv = ["--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ck")]
    with pytest.raises(SystemExit):
        cli.main(softmax.CONFIG, argv)
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(f"no epoch was saved in {tmp_path / 'ck'} yet. Run it again, from "
                           "the first epoch, with:")  # fmt: skip
    assert err[1] == f"  {commands.python_module('experiments.softmax', *argv, '--resume')}"


def test_has_saved_epoch_counts_complete_epochs_only(tmp_path):
    group = tmp_path / "members-1-1"
    (group / "3.orbax-checkpoint-tmp-1234").mkdir(parents=True)  # a save in progress
    assert not checkpoint_folder.has_saved_epoch(str(tmp_path))
    (group / "3").mkdir()
    assert checkpoint_folder.has_saved_epoch(str(tmp_path))


def test_commands_name_the_running_interpreter(stopped, tmp_path, capsys, monkeypatch):
    """Outside the environment on PATH: the interpreter's own path, never a bare `python`."""
    monkeypatch.setenv("PATH", str(tmp_path / "no python here"))
    stopped.append(KeyboardInterrupt())
    with pytest.raises(SystemExit):
        cli.main(softmax.CONFIG, ["--logdir", str(tmp_path / "logs")])
    assert f"\n  {sys.executable} -m experiments.softmax --logdir " in capsys.readouterr().err


def test_a_module_of_ones_own_is_named_in_its_messages(monkeypatch):
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("my_project.wide", None)
    main.CONFIG = softmax.CONFIG
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert cli.parser(softmax.CONFIG).prog == "python -m my_project.wide"
