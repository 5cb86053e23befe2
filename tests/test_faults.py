"""Faults a run meets outside the code: a full disk, damaged data, runs started together, a
killed process, a preempted host. Each is injected where a real one cannot be made in a test
(a writer raising ENOSPC, a byte flipped in a copy of the dataset, SIGKILL in a subprocess)."""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import five_layer_relu
from mnist_jax import cli, writer

ROOT = Path(__file__).resolve().parents[1]
MOCK_RUN = str(Path(__file__).with_name("mock_run.py"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
SHORT = ["--batch-size", "20"]  # 200 mock examples: 10 steps an epoch


def mock_cli(tmp_path, *flags):
    argv = ["--logdir", str(tmp_path / "logs"), "--json", str(tmp_path / "out.json"), *SHORT]
    argv.append("--quiet")
    with tfds.testing.mock_data(num_examples=200):
        return cli.main(five_layer_relu.CONFIG, [*argv, *flags])


def final_numbers(json_path) -> np.ndarray:
    runs = json.loads(Path(json_path).read_text())["runs"]
    return np.array([[e["loss"], e["test_loss"]] for r in runs for e in r["epochs"]])


def test_a_full_disk_under_the_logs_stops_the_run_in_one_line_and_the_checkpoint_resumes_mock_data(
    tmp_path, monkeypatch, capsys
):
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    mock_cli(tmp_path / "straight", "--epochs", "3")
    real_append, writes = writer._append, []

    def fill_up(path, data, create=False):
        writes.append(path)
        if len(writes) > 4:  # the first epoch's events are written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_append(path, data, create)

    monkeypatch.setattr(writer, "_append", fill_up)
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        mock_cli(tmp_path, "--epochs", "3", *ckpt)
    assert exit_info.value.code == 1
    assert time.monotonic() - started < 60  # stopped, not hung
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "No space left on device" in err and str(tmp_path / "logs") in err, err
    monkeypatch.setattr(writer, "_append", real_append)
    mock_cli(tmp_path, "--epochs", "3", "--resume", *ckpt)
    np.testing.assert_array_equal(
        final_numbers(tmp_path / "out.json"), final_numbers(tmp_path / "straight" / "out.json")
    )


def test_a_damaged_prepared_dataset_is_one_line_naming_the_file_and_the_fix(
    tmp_path, mnist_data_dir, capsys
):
    data_dir = tmp_path / "tfds"
    shutil.copytree(Path(mnist_data_dir) / "mnist", data_dir / "mnist")
    for cached in data_dir.rglob("mnist_jax-cache-*"):
        cached.unlink()
    (train_file,) = data_dir.rglob("mnist-train.array_record*")
    raw = bytearray(train_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    train_file.write_bytes(bytes(raw))
    logdir = tmp_path / "logs"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            five_layer_relu.CONFIG,
            ["--data-dir", str(data_dir), "--logdir", str(logdir), "--epochs", "1", "--quiet"],
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert train_file.name in err and "python -m mnist_jax.data prepare" in err, err
    assert not logdir.exists() or not any(logdir.rglob("config.json"))  # no run left behind


def test_a_missing_data_dir_is_refused_and_not_created(tmp_path, capsys, monkeypatch):
    from mnist_jax.datasets import loading

    monkeypatch.setattr(loading, "network_error", lambda url: "offline (test)")
    missing = tmp_path / "no_such_dir"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(five_layer_relu.CONFIG, ["--data-dir", str(missing), "--logdir", str(tmp_path)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "does not exist" in captured.err and "Downloading" not in captured.out + captured.err
    assert not missing.exists()


def start(tmp_path, *flags, name="five_layer_relu"):
    return subprocess.Popen(
        [sys.executable, MOCK_RUN, name, *SHORT, "--logdir", str(tmp_path / "logs"), *flags],
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_runs_started_together_claim_distinct_run_directories_mock_data(tmp_path):
    procs = [start(tmp_path, "--epochs", "1") for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    runs = sorted((tmp_path / "logs" / "five_layer_relu").glob("lr_*"))
    assert [r.name for r in runs] == ["lr_0.001-seed_0", "lr_0.001-seed_0-2", "lr_0.001-seed_0-3"]
    for run in runs:
        assert json.loads((run / "config.json").read_text())["run"] == run.name
        assert len(list((run / "train").iterdir())) == 1  # its own events only


@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume_gives_the_uninterrupted_numbers_mock_data(tmp_path):
    epochs = ["--epochs", "12"]
    straight = start(tmp_path / "straight", *epochs, "--json", str(tmp_path / "straight.json"))
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    rng = np.random.default_rng(0)
    resume: list[str] = []
    for _ in range(4):  # killed at a random moment after training (or a save) began
        proc = start(tmp_path, *epochs, *ckpt, *resume, "--json", str(tmp_path / "out.json"))
        for line in proc.stdout:  # killed at a random moment once training has begun
            if line.startswith(("epoch", "resuming")):
                break
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        resume = ["--resume"] if (tmp_path / "ckpt" / "run.json").exists() else []
        if proc.returncode == 0:
            break
    else:
        finished = start(tmp_path, *epochs, *ckpt, *resume, "--json", str(tmp_path / "out.json"))
        assert finished.wait(timeout=300) == 0, finished.stderr.read()
    np.testing.assert_array_equal(
        final_numbers(tmp_path / "out.json"), final_numbers(tmp_path / "straight.json")
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_processes(tmp_path) -> Iterator[list[subprocess.Popen]]:
    """A long checkpointed run in two processes on localhost, killed after the test if it left
    them running (a test that timed out)."""
    flags = ["--epochs", "200", "--checkpoint-dir", str(tmp_path / "ckpt")]
    cluster = ["--coordinator", f"localhost:{free_port()}", "--num-processes", "2"]
    procs = [start(tmp_path, *flags, *cluster, "--process-id", str(i)) for i in range(2)]
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_sigterm_to_one_of_two_processes_stops_both_after_the_same_epoch_mock_data(
    tmp_path, two_processes
):
    procs = two_processes
    for line in procs[0].stdout:
        if line.startswith("epoch 2/"):
            procs[1].send_signal(signal.SIGTERM)  # the host that is preempted is not process 0
            break
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [143, 143], errs
    (group,) = (tmp_path / "ckpt").glob("members-*")
    last = max(int(p.name) for p in group.iterdir())
    assert f"after epoch {last}/200" in errs[0], errs[0]
    assert "--resume" in errs[0].splitlines()[-1]


@pytest.mark.slow
def test_a_peer_killed_outright_ends_the_other_in_one_line_not_a_stack_dump_mock_data(
    two_processes,
):
    procs = two_processes
    for line in procs[0].stdout:
        if line.startswith("epoch 2/"):
            procs[1].send_signal(signal.SIGKILL)
            break
    started = time.monotonic()
    _, err = procs[0].communicate(timeout=120)
    assert procs[0].returncode == 1, err
    assert time.monotonic() - started < 60  # before the coordination service's own abort
    assert err.strip().count("\n") == 0, err
    assert "process 1 of this run was lost" in err and "--resume" in err, err
