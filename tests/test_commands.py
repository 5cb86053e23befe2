"""Commands in messages name the interpreter that runs: pasted, they run it again."""

import os
import sys

import pytest

from mnist_jax import commands


@pytest.fixture
def interpreter(tmp_path, monkeypatch):
    """This interpreter as `bin/python` of a folder, which is `sys.executable`; PATH empty."""
    folder = tmp_path / "venv" / "bin"
    folder.mkdir(parents=True)
    (folder / "python").symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setattr(sys, "executable", str(folder / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    return folder


def test_python_on_path_is_shown_as_python(interpreter, monkeypatch):
    monkeypatch.setenv("PATH", f"{interpreter}{os.pathsep}/usr/bin")
    assert commands.python() == "python"
    assert commands.python_module("mnist_jax.data", "prepare", "a b") == (
        "python -m mnist_jax.data prepare 'a b'"
    )
    assert commands.tensorboard("logs") == "tensorboard --logdir logs"


def test_no_python_on_path_shows_the_interpreter(interpreter):
    assert commands.python() == sys.executable == str(interpreter / "python")
    assert commands.tensorboard("my logs") == (
        f"{sys.executable} -m tensorboard.main --logdir 'my logs'"
    )


def test_another_environment_first_on_path_shows_the_interpreter(
    interpreter, tmp_path, monkeypatch
):
    """The system's python and a venv's are the same file in other folders: not the same
    environment, so the venv's path is shown."""
    other = tmp_path / "system" / "bin"
    other.mkdir(parents=True)
    (other / "python").symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setenv("PATH", f"{other}{os.pathsep}{interpreter}")
    assert commands.python() == str(interpreter / "python")
    assert commands.python_module("experiments.softmax").startswith(f"{interpreter}/python -m ")
