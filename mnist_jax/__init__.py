"""mnist_jax: deep-learning basics on MNIST in pure-functional JAX and Flax."""

import time

IMPORT_TIME = time.perf_counter()  # start of a run's start-up, reported as `startup_seconds`
