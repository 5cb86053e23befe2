"""Checkpoints the tests of a trained model's uses read (`load`, `predict`, `evaluate --attack`,
`init_from`): trained once a process, in a folder removed at exit."""

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from mnist_jax import cli, datasets
from mnist_jax.config import Config

# A small MLP: 200 steps of 100 reach about 0.92 on MNIST's test set.
SMALL_MLP = Config(
    name="small_mlp", model_name="mlp", model={"hidden": [64, 32]}, lr=0.003, steps=200
)


def _folder() -> Path:
    path = Path(tempfile.mkdtemp(prefix="mnist_jax_trained_"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def mnist_checkpoint(data_dir: str) -> tuple[str, object, str]:
    """(checkpoint dir, result, data dir): `SMALL_MLP` on the real MNIST in `data_dir` (the
    `mnist_data_dir` fixture's), seeds 0 and 1."""
    workdir = _folder()
    result = cli.main(
        SMALL_MLP,
        ["--seed", "0,1", "--data-dir", data_dir, "--no-logs", "--quiet",
         "--checkpoint-dir", str(workdir / "ckpt")],
    )  # fmt: skip
    return str(workdir / "ckpt"), result, data_dir


def mock_run(workdir: Path, config: Config, *flags: str):
    """`config` on tfds mock data (random images, 200 per split), checkpointed into
    `workdir/ckpt` with logs in `workdir/logs`; its result."""
    argv = [
        "--batch-size", "20", "--logdir", str(workdir / "logs"),
        "--checkpoint-dir", str(workdir / "ckpt"), "--quiet", *flags,
    ]  # fmt: skip
    with tfds.testing.mock_data(num_examples=200):
        return cli.main(config, argv)


def mock_test_set(name: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """The mock data's test split, as `mock_run` trained and evaluated on it."""
    with tfds.testing.mock_data(num_examples=200):
        return datasets.load(name, "test")
