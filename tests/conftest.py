"""Shared fixtures: the real MNIST, prepared once per test session."""

import os
from pathlib import Path

import pytest

from mnist_jax import data

# The offline copy of the four IDX files beside the repository (absent for most users).
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory) -> str:
    """A tfds data dir holding the prepared real MNIST; skips the test when there is none.

    $MNIST_JAX_TEST_DATA_DIR when set (CI prepares into it), else a session temporary folder
    prepared from ../shared/mnist.
    """
    data_dir = os.environ.get("MNIST_JAX_TEST_DATA_DIR")
    if data_dir:
        return data_dir
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"no real MNIST: set MNIST_JAX_TEST_DATA_DIR or provide {SHARED_MNIST}")
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    data.prepare(SHARED_MNIST, data_dir)
    return data_dir
