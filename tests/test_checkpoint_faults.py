"""Checkpoint dirs under faults (#19): a save that fails, a dir deleted during the run, two
processes on one dir, a resume that logs elsewhere, a restore that fails, a stop before the
first save. All on tfds mock data, 10 batches an epoch, as `test_checkpoint.run` trains them."""

import argparse
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orbax.checkpoint as ocp
import pytest
from test_checkpoint import metrics_of, run

from mnist_jax import checkpoint, checkpoint_folder, cli

RELU = "five_layer_relu"


def stopped(capsys, code, *args) -> str:
    """The one line a run that stops with exit status `code` prints on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        run(*args)
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def saved_epochs(ckpt) -> list[str]:
    (group,) = Path(ckpt).glob("members-*")
    return sorted(p.name for p in group.iterdir())


def test_a_checkpoint_that_cannot_be_written_stops_the_run_at_that_epoch_on_a_simulated_full_disk_mock_data(  # noqa: E501
    tmp_path, monkeypatch, capsys
):
    whole = run(RELU, tmp_path / "whole", "--epochs", "3")
    real_save = ocp.CheckpointManager.save

    def full_at_epoch_2(manager, step, *args, **kwargs):
        if step == 2:  # what tensorstore raises on a full disk
            raise ValueError("RESOURCE_EXHAUSTED: Failed to write [os_error_code='28']")
        return real_save(manager, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", full_at_epoch_2)
    out_json = tmp_path / "out.json"
    err = stopped(capsys, 1, RELU, tmp_path, "--epochs", "3", "--json", str(out_json))
    assert "the checkpoint of epoch 2 could not be written" in err, err
    assert "(No space left on device)" in err and "epoch 1 is intact" in err, err
    assert "--resume" in err
    assert saved_epochs(tmp_path / "ckpt") == ["1"]  # no half-written epoch 2 left
    report = json.loads(out_json.read_text())  # the results of the epochs trained
    # Epoch 2 is written while epoch 3 trains: its failure is raised by epoch 3's save.
    assert [len(r["epochs"]) for r in report["runs"]] == [3]
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
    resumed = run(RELU, tmp_path, "--epochs", "3", "--resume")
    assert metrics_of(resumed) == metrics_of(whole)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_checkpoint_dir_on_a_full_tmpfs_stops_in_one_line_with_the_results_written_mock_data(
    tmp_path, capsys
):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out_json = tmp_path / "out.json"  # softmax: epoch 0 fits in 200 KB, then the disk fills
        argv = ["softmax", tmp_path, "--epochs", "4", "--json", str(out_json)]
        with pytest.raises(SystemExit) as exit_info:
            run(*argv, "--checkpoint-dir", str(disk / "ckpt"))
        assert exit_info.value.code == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "No space left on device" in err, err
        assert json.loads(out_json.read_text())["runs"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_checkpoint_dir_deleted_between_epochs_stops_the_run_and_a_plain_rerun_works_mock_data(
    tmp_path, monkeypatch, capsys
):
    real_save = checkpoint.MemberCheckpoints.save

    def deleted_before_epoch_2(store, epoch, *args):
        if epoch == 2:
            store.wait()  # between epochs: epoch 1's checkpoint, written in the background, whole
            shutil.rmtree(tmp_path / "ckpt")
        return real_save(store, epoch, *args)

    monkeypatch.setattr(checkpoint.MemberCheckpoints, "save", deleted_before_epoch_2)
    err = stopped(capsys, 1, RELU, tmp_path, "--epochs", "3")
    assert "was deleted during the run" in err and "without --resume" in err, err
    assert not (tmp_path / "ckpt").exists()  # nothing recreated half
    monkeypatch.setattr(checkpoint.MemberCheckpoints, "save", real_save)
    assert len(run(RELU, tmp_path, "--epochs", "1").runs[0].history) == 1


def test_checkpoints_without_their_record_name_the_way_out_mock_data(tmp_path, capsys):
    run(RELU, tmp_path, "--epochs", "1")
    (tmp_path / "ckpt" / "run.json").unlink()
    line = stopped(capsys, 2, RELU, tmp_path, "--epochs", "1")
    assert "without their run.json, which cannot be resumed" in line and "--overwrite" in line


def test_a_checkpoint_dir_in_use_is_refused_at_once_mock_data(tmp_path, capsys):
    run(RELU, tmp_path, "--epochs", "1")
    with checkpoint_folder.locked(str(tmp_path / "ckpt")):
        started = time.monotonic()
        line = stopped(capsys, 2, RELU, tmp_path, "--epochs", "2", "--resume")
        assert time.monotonic() - started < 10  # refused, not waiting
    assert f"is in use by a run in process {os.getpid()}" in line, line
    assert len(run(RELU, tmp_path, "--epochs", "2", "--resume").runs[0].history) == 2


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            str(ckpt / checkpoint_folder.LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert holder.stdout.readline() == "held\n"
    with (
        pytest.raises(checkpoint_folder.CheckpointError, match="is in use"),
        checkpoint_folder.locked(str(ckpt)),
    ):
        pass
    holder.kill()
    holder.wait()
    with checkpoint_folder.locked(str(ckpt)):
        fd = os.open(ckpt / checkpoint_folder.LOCK_FILE, os.O_RDONLY)
        with pytest.raises(BlockingIOError):  # held by this process now
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("where", ["another logdir", "no logs"])
def test_resume_logs_where_this_command_says_mock_data(tmp_path, where):
    run(RELU, tmp_path, "--epochs", "1")
    before = listing(tmp_path / "logs")
    elsewhere = tmp_path / "elsewhere"
    flags = ["--logdir", str(elsewhere)] if where == "another logdir" else ["--no-logs"]
    resumed = run(RELU, tmp_path, "--epochs", "2", "--resume", *flags)
    assert listing(tmp_path / "logs") == before  # the first run's logs untouched
    if where == "no logs":
        assert resumed.runs[0].run_dir is None and not elsewhere.exists()
        return
    run_dir = Path(resumed.runs[0].run_dir)
    assert run_dir.parent == elsewhere / RELU
    assert json.loads((run_dir / "config.json").read_text())["run"] == run_dir.name
    assert list((run_dir / "train").glob("events.out.tfevents.*"))
    # A later resume with the same --logdir continues the run directory it logged into.
    again = run(RELU, tmp_path, "--epochs", "3", "--resume", *flags)
    assert again.runs[0].run_dir == str(run_dir)


def test_a_failed_restore_closes_orbaxs_checkpoint_store_mock_data(tmp_path, capsys, monkeypatch):
    run(RELU, tmp_path, "--epochs", "1")
    (group,) = (tmp_path / "ckpt").glob("members-*")
    for path in (group / "1" / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 1000:
            path.write_bytes(b"not a checkpoint")
    closed = []
    real_close = checkpoint.MemberCheckpoints.close
    monkeypatch.setattr(
        checkpoint.MemberCheckpoints, "close", lambda s: closed.append(s.path) or real_close(s)
    )
    line = stopped(capsys, 2, RELU, tmp_path, "--epochs", "2", "--resume")
    assert "cannot be read" in line and closed == [str(group)]


def test_a_stop_before_the_first_checkpoint_names_no_resume_command(tmp_path):
    missing = str(tmp_path / "ckpt")
    argv = ["--checkpoint-dir", missing]
    args = argparse.Namespace(checkpoint_dir=missing, logdir="logs")
    message = cli.stop_message("python -m experiments.x", KeyboardInterrupt(), argv, args)
    assert "--resume" not in message, message
    assert f"stopped: interrupted at once; nothing was saved in {missing} yet" in message
    assert "--checkpoint-dir" in message.splitlines()[1]  # the same command again


def test_an_unwritable_results_file_after_training_is_one_line_keeping_the_old_mock_data(
    tmp_path, monkeypatch, capsys
):
    out_json = tmp_path / "out.json"
    out_json.write_text("the old results")

    real_replace = os.replace

    def full(source, destination):  # the disk fills up as the results are written
        if str(destination) == str(out_json):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", full)
    err = stopped(capsys, 1, RELU, tmp_path, "--epochs", "1", "--json", str(out_json))
    assert f"cannot write {out_json}: No space left on device" in err, err
    assert out_json.read_text() == "the old results"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.json")] == []


@pytest.mark.slow  # two fresh processes at once
def test_two_resumes_of_one_checkpoint_dir_at_once_one_is_refused_mock_data(tmp_path):
    run(RELU, tmp_path, "--epochs", "1")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    argv = [
        sys.executable, str(Path(__file__).with_name("mock_run.py")), RELU, "--batch-size", "20",
        "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt"),
        "--epochs", "200", "--resume", "--quiet",
    ]  # fmt: skip
    procs = [
        subprocess.Popen(argv, env=env, cwd=root, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], errs
    refused = errs[[p.returncode for p in procs].index(2)]
    assert refused.count("\n") == 1 and "is in use by a run in process" in refused, refused
    assert len([p for p in (tmp_path / "logs" / RELU).iterdir() if p.is_dir()]) == 1  # one run
