"""mnist_jax: deep-learning basics on MNIST in pure-functional JAX and Flax."""

import time

IMPORT_TIME = time.perf_counter()  # start of a run's start-up, reported as `startup_seconds`


def __getattr__(name: str):
    """`mnist_jax.train_and_evaluate` and `mnist_jax.load` (a checkpoint's trained members),
    imported on first use: `import mnist_jax` stays free of JAX, so the start-up clock above
    starts before the heavy imports."""
    if name == "train_and_evaluate":
        from mnist_jax.experiment import train_and_evaluate

        return train_and_evaluate
    if name == "load":
        from mnist_jax.trained import load

        return load
    raise AttributeError(f"module 'mnist_jax' has no attribute {name!r}")
