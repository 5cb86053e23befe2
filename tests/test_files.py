"""Result files are written whole or not at all, and a destination that cannot take a file is
named before any work (#19)."""

import errno
import os

import pytest
import tensorflow_datasets as tfds

from experiments import five_layer_relu
from mnist_jax import cli, files


def test_a_file_is_written_whole(tmp_path):
    path = tmp_path / "new" / "out.json"
    files.write_atomic(str(path), "{}")
    assert path.read_text() == "{}" and os.listdir(path.parent) == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_on_a_simulated_full_disk(
    tmp_path, monkeypatch
):
    path = tmp_path / "REPORT.md"
    path.write_text("the old report")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(files.WriteError) as error:
        files.write_atomic(str(path), "x" * 100_000)
    assert str(error.value) == (
        f"cannot write {path}: No space left on device; what it held before is kept"
    )
    assert path.read_text() == "the old report" and os.listdir(tmp_path) == ["REPORT.md"]


def test_destinations_that_cannot_take_a_file_are_named(tmp_path):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir").mkdir()
    assert files.destination_problem(str(tmp_path / "a_dir")) == (
        "is a directory, expected a file name"
    )
    under = files.destination_problem(str(tmp_path / "a_file" / "sub" / "out.csv"))
    assert under == f"{tmp_path / 'a_file'} is not a directory"
    assert files.destination_problem(str(tmp_path / "new" / "out.csv")) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_named_chmod(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    assert files.destination_problem(str(folder / "out.csv")) == f"{folder} is not writable"


@pytest.mark.parametrize("flag", ["--csv", "--json"])
@pytest.mark.parametrize("where", ["{file}/out", "{dir}"])
def test_a_results_file_that_cannot_be_written_is_refused_before_training_mock_data(
    tmp_path, capsys, flag, where
):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir").mkdir()
    path = where.format(file=tmp_path / "a_file", dir=tmp_path / "a_dir")
    logdir = tmp_path / "logs"
    with tfds.testing.mock_data(num_examples=20), pytest.raises(SystemExit) as exit_info:
        cli.main(five_layer_relu.CONFIG, [flag, path, "--logdir", str(logdir), "--steps", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path in err, err
    assert not logdir.exists()
