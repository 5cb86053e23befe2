"""Checkpoints, exact resume, interruption by a real signal, divergence, and refused checkpoints,
all on tfds mock data (random images): 200 examples in batches of 20, 10 batches an epoch, as
`mock_run.py` runs them in a fresh process."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import tensorflow_datasets as tfds
from mock_run import argv_with, train_then_evaluate
from test_experiments import config_of, scalars

from mnist_jax import checkpoint, cli, evaluate

ROOT = Path(__file__).resolve().parents[1]
MOCK_RUN = str(Path(__file__).with_name("mock_run.py"))
METRICS = ("loss", "accuracy", "binary_accuracy", "test_loss", "test_accuracy")


def run(name, workdir, *flags):
    """An experiment on mock data, checkpointing into `workdir/ckpt` after every epoch (unless
    `flags` say otherwise); its report."""
    argv = argv_with([
        "--batch-size", "20", "--logdir", str(workdir / "logs"),
        "--checkpoint-dir", str(workdir / "ckpt"), "--checkpoint-every", "0", "--quiet",
    ], flags)  # fmt: skip
    with tfds.testing.mock_data(num_examples=200):
        return cli.main(config_of(name), argv)


def saved_states(ckpt_dir):
    """The latest saved state of every member group, read back with orbax directly."""
    states = []
    for group in sorted(Path(ckpt_dir).glob("members-*")):
        with ocp.CheckpointManager(group) as manager:
            step = manager.latest_step()
            states.append(
                manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
            )
    return [s.state for s in states]


def assert_same_states(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert jax.tree.structure(x) == jax.tree.structure(y)
        for leaf_x, leaf_y in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
            np.testing.assert_array_equal(leaf_x, leaf_y)  # bit for bit


def metrics_of(result):
    return [
        ([[e.values[k] for k in METRICS] for e in r.history], r.batch_losses.tolist())
        for r in result.runs
    ]


def logged(workdir, name):
    """What TensorBoard shows of each member's every-epoch and every-batch curves:
    {run: {"train/epoch_loss": [(step, value), ...], ...}} (the end's figures, logged where
    each process stopped, aside)."""
    runs = Path(workdir) / "logs" / name
    return {
        run.name: {
            f"{split}/{tag}": points
            for split in ("train", "test")
            for tag, points in scalars(run / split).items()
            if tag.startswith(("epoch_", "batch_"))
        }
        for run in runs.iterdir()
        if run.is_dir()
    }


@pytest.mark.parametrize(
    "name, flags",
    [
        # 10 s: slow, as the README's command neared 3 minutes; tests/test_faults.py resumes
        # a run in the fast set.
        pytest.param("five_layer_relu_dropout", (), id="single", marks=pytest.mark.slow),
        pytest.param(
            "five_layer_relu",
            ("--lr", "1e-3,1e-2", "--seed", "0,1", "--max-members", "2"),
            id="sweep-in-two-chunks",
            marks=pytest.mark.slow,  # three runs of two chunks: .ci/run runs it
        ),
    ],
)
def test_stop_after_epoch_2_and_resume_is_bit_identical_mock_data(tmp_path, name, flags):
    whole = run(name, tmp_path / "whole", "--epochs", "4", *flags)
    run(name, tmp_path / "parts", "--epochs", "2", *flags)
    resumed = run(name, tmp_path / "parts", "--epochs", "4", "--resume", *flags)

    assert metrics_of(resumed) == metrics_of(whole)
    assert_same_states(
        saved_states(tmp_path / "parts" / "ckpt"), saved_states(tmp_path / "whole" / "ckpt")
    )
    parts, whole_logs = logged(tmp_path / "parts", name), logged(tmp_path / "whole", name)
    assert parts == whole_logs  # same runs, every step once, same values
    for tags in parts.values():
        assert [step for step, _ in tags["train/batch_loss"]] == list(range(1, 41))
        assert [step for step, _ in tags["test/epoch_loss"]] == [1, 2, 3, 4]


@pytest.mark.slow  # three fresh processes, one after the other, on four forced CPU devices
def test_resume_on_four_devices_is_bit_identical_mock_data(tmp_path):
    def mock_run(workdir, *flags):
        subprocess.run(
            [
                sys.executable,
                MOCK_RUN,
                "five_layer_relu",
                "--batch-size",
                "20",
                "--lr",
                "1e-3,1e-2",
                "--logdir",
                str(workdir / "logs"),
                "--checkpoint-dir",
                str(workdir / "ckpt"),
                "--quiet",
                *flags,
            ],  # fmt: skip
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
            },
            check=True,
            cwd=ROOT,
            timeout=300,
        )

    mock_run(tmp_path / "whole", "--epochs", "3")
    mock_run(tmp_path / "parts", "--epochs", "1")
    mock_run(tmp_path / "parts", "--epochs", "3", "--resume")
    assert_same_states(
        saved_states(tmp_path / "parts" / "ckpt"), saved_states(tmp_path / "whole" / "ckpt")
    )
    assert logged(tmp_path / "parts", "five_layer_relu") == logged(
        tmp_path / "whole", "five_layer_relu"
    )


@pytest.mark.parametrize(
    "signum",
    [
        # A fresh process, signalled: slow (.ci/run runs them). In-process, a SIGINT's stop after
        # the epoch and its resume: test_search_runs' mid-search resume.
        pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, id="SIGTERM", marks=pytest.mark.slow),
    ],
)
def test_a_signal_stops_after_the_epoch_with_a_checkpoint_to_resume_mock_data(tmp_path, signum):
    argv = [
        "five_layer_relu", "--batch-size", "20", "--epochs", "200",
        "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, MOCK_RUN, *argv],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("epoch 2/200"):
            proc.send_signal(signum)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    stopped_after = int(err.split("after epoch ")[1].split("/")[0])
    assert 2 <= stopped_after < 200
    assert "Resume with:" in err and "--resume" in err.splitlines()[-1]
    (group,) = (tmp_path / "ckpt").glob("members-*")
    assert max(int(p.name) for p in group.iterdir()) == stopped_after
    (run_logs,) = logged(tmp_path, "five_layer_relu").values()
    assert len(run_logs["test/epoch_loss"]) == stopped_after  # flushed up to the checkpoint

    resumed = run("five_layer_relu", tmp_path, "--epochs", str(stopped_after + 2), "--resume")
    assert len(resumed.runs[0].history) == stopped_after + 2
    (run_logs,) = logged(tmp_path, "five_layer_relu").values()
    assert [s for s, _ in run_logs["test/epoch_loss"]] == list(range(1, stopped_after + 3))


def test_a_non_finite_loss_stops_a_single_run_naming_step_and_rate_mock_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(
            "five_layer_relu",
            tmp_path,
            "--epochs",
            "5",
            "--lr",
            "1e30",
            "--json",
            str(tmp_path / "r.json"),
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "the loss is not finite at step 2 for lr_1e+30-seed_0" in err
    (saved,) = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert saved["diverged"] and saved["diverged_at_step"] == 2
    assert len(saved["epochs"]) == 1  # stopped after the epoch it diverged in, not after 5


@pytest.mark.slow  # the freeze itself: test_train: .ci/run runs it
def test_a_sweep_marks_its_diverged_member_and_trains_on_mock_data(tmp_path, capsys):
    report = run("five_layer_relu", tmp_path, "--epochs", "2", "--lr", "1e-3,1e30")
    assert [r.diverged for r in report.runs] == [False, True]
    assert all(len(r.history) == 2 for r in report.runs)
    table = capsys.readouterr().out.splitlines()
    assert table[-1].split()[0] == "1e+30" and table[-1].endswith("diverged")


def refusal(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run(*args)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_a_checkpoint_of_another_run_is_refused_saying_what_differs_mock_data(tmp_path, capsys):
    run("five_layer_relu", tmp_path, "--epochs", "2")
    line = refusal(capsys, "five_layer_sigmoid", tmp_path, "--epochs", "2", "--resume")
    assert "is of a different run" in line
    assert "name is five_layer_relu in the checkpoint but five_layer_sigmoid now" in line
    assert "model.activation is relu in the checkpoint but sigmoid now" in line
    line = refusal(capsys, "five_layer_relu", tmp_path, "--epochs", "2", "--resume", "--lr", "0.01")
    assert "lr is 0.001 in the checkpoint but 0.01 now" in line
    line = refusal(
        capsys, "five_layer_relu", tmp_path, "--epochs", "2", "--resume", "optimizer.b1=0.8"
    )
    assert "optimizer.b1 is 0.9 in the checkpoint but 0.8 now" in line
    line = refusal(capsys, "five_layer_relu", tmp_path, "--epochs", "1", "--resume")
    assert "after epoch 2, past the 1 epoch(s) asked" in line


def test_a_damaged_checkpoint_is_refused_and_left_as_it_was_mock_data(tmp_path, capsys):
    run("five_layer_relu", tmp_path, "--epochs", "2")
    (group,) = (tmp_path / "ckpt").glob("members-*")
    for path in (group / "2" / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 1000:
            path.write_bytes(b"not a checkpoint")
    files = {p: p.read_bytes() for p in (tmp_path / "ckpt").rglob("*") if p.is_file()}
    line = refusal(capsys, "five_layer_relu", tmp_path, "--epochs", "3", "--resume")
    assert "the checkpoint of epoch 2" in line and "cannot be read" in line
    assert "to resume from epoch 1" in line
    assert {p: p.read_bytes() for p in (tmp_path / "ckpt").rglob("*") if p.is_file()} == files


def test_an_unfinished_save_leaves_the_previous_checkpoint_the_latest_mock_data(tmp_path):
    run("five_layer_relu", tmp_path, "--epochs", "2")
    (group,) = (tmp_path / "ckpt").glob("members-*")
    # What a crash while saving epoch 3 leaves: orbax's temporary folder, never renamed.
    shutil.copytree(group / "2", group / "3.orbax-checkpoint-tmp-1234")
    (group / "3.orbax-checkpoint-tmp-1234" / "commit_success.txt").unlink(missing_ok=True)
    resumed = run("five_layer_relu", tmp_path, "--epochs", "3", "--resume")
    whole = run("five_layer_relu", tmp_path / "whole", "--epochs", "3")
    assert metrics_of(resumed) == metrics_of(whole)


def test_a_used_checkpoint_dir_is_kept_unless_overwrite_mock_data(tmp_path, capsys):
    run("five_layer_relu", tmp_path, "--epochs", "2")
    line = refusal(capsys, "five_layer_relu", tmp_path, "--epochs", "1")
    assert "already holds checkpoints of 'five_layer_relu'" in line and "--resume" in line
    run("five_layer_relu", tmp_path, "--epochs", "1", "--overwrite")
    (group,) = (tmp_path / "ckpt").glob("members-*")
    assert sorted(int(p.name) for p in group.iterdir()) == [1]


def test_a_run_refused_on_its_data_leaves_no_checkpoint_to_refuse_the_next_mock_data(
    tmp_path, capsys
):
    line = refusal(capsys, "five_layer_relu", tmp_path, "--epochs", "1", "--batch-size", "400")
    assert "batch size 400 is larger than the 200 training examples" in line
    assert not (tmp_path / "ckpt").exists()
    run("five_layer_relu", tmp_path, "--epochs", "1")


def test_resume_without_a_checkpoint_is_refused_mock_data(tmp_path, capsys):
    line = refusal(capsys, "five_layer_relu", tmp_path, "--epochs", "1", "--resume")
    assert "no checkpoint to resume" in line


@pytest.mark.parametrize(
    "name, flags",
    [
        pytest.param("five_layer_relu", ("--lr", "1e-3,1e-2"), id="sweep"),
        pytest.param(
            "gorner_cnn",
            (
                "model.channels=[2,4,4]",
                "model.dense=8",
                "model.dropout_rate=0,0.5",
                "model.conv=xla_canonical",
            ),
            id="cnn",
            marks=pytest.mark.slow,  # a CNN compiled twice: .ci/run runs it
        ),
        pytest.param(
            "five_layer_relu",
            ("model.hidden=[16],[8,8]",),
            id="groups",
            marks=pytest.mark.slow,  # the sweep case is the fast one: .ci/run runs it
        ),
    ],
)
def test_evaluate_gives_the_runs_final_test_numbers_mock_data(tmp_path, capsys, name, flags):
    report = run(name, tmp_path, "--epochs", "2", *flags)
    with tfds.testing.mock_data(num_examples=200):
        result = evaluate.main([str(tmp_path / "ckpt")])
    assert [
        (r.hparams, r.group, len(r.history), r.test_loss, r.test_accuracy) for r in result.runs
    ] == [(r.hparams, r.group, 2, r.test_loss, r.test_accuracy) for r in report.runs]
    assert "after epoch 2" in capsys.readouterr().out


@pytest.mark.slow  # four groups, three runs: .ci/run runs it
def test_resume_across_groups_is_the_same_as_a_straight_run_mock_data(tmp_path):
    sweep = ("model.hidden=[16],[8,8]", "model.activation=relu,tanh")
    whole = run("five_layer_relu", tmp_path / "whole", "--epochs", "2", *sweep)
    run("five_layer_relu", tmp_path / "parts", "--epochs", "1", *sweep)
    resumed = run("five_layer_relu", tmp_path / "parts", "--epochs", "2", "--resume", *sweep)
    assert [r.group for r in resumed.runs] == [0, 1, 2, 3]
    assert metrics_of(resumed) == metrics_of(whole)
    assert_same_states(
        saved_states(tmp_path / "parts" / "ckpt"), saved_states(tmp_path / "whole" / "ckpt")
    )
    assert len(list((tmp_path / "parts" / "ckpt").glob("members-*"))) == 4
    parts = logged(tmp_path / "parts", "five_layer_relu")
    assert parts == logged(tmp_path / "whole", "five_layer_relu")
    assert sorted(parts)[0] == "hidden_16-activation_relu-lr_0.001-seed_0"


TINY_EXPERIMENT = """
\"\"\"An experiment module of one's own that registers its own model.\"\"\"

import flax.linen as nn
import tensorflow_datasets as tfds

from mnist_jax import cli, models
from mnist_jax.config import Config


@models.MODELS.register("tiny")
class Tiny(nn.Module):
    width: int = 8
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x_BxHxWxC, *, train=False):
        h = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        return nn.Dense(10)(nn.relu(nn.Dense(self.width)(h)))


CONFIG = Config(name="tiny_exp", model_name="tiny", epochs=1, batch_size=20)

if __name__ == "__main__":
    with tfds.testing.mock_data(num_examples=200):
        cli.main(CONFIG)
"""


@pytest.mark.slow  # two fresh processes: what it checks is a process that never imported it
def test_evaluate_rebuilds_a_model_registered_in_an_experiment_module_mock_data(tmp_path):
    runs = train_then_evaluate(tmp_path, "tiny_exp", TINY_EXPERIMENT, "model.width=4")
    (before,), (after,) = runs
    assert after["config"]["model_name"] == "tiny" and after["config"]["model"]["width"] == 4
    assert (after["test_loss"], after["test_accuracy"]) == (
        before["test_loss"],
        before["test_accuracy"],
    )


def test_evaluate_refuses_a_folder_that_is_no_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "holds no checkpoint" in capsys.readouterr().err


def test_checkpoints_keep_the_last_few_epochs_mock_data(tmp_path):
    run("softmax", tmp_path, "--epochs", "5")
    (group,) = (tmp_path / "ckpt").glob("members-*")
    assert sorted(int(p.name) for p in group.iterdir()) == list(range(6 - checkpoint.KEEP, 6))
