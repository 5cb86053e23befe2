"""`python tests/mock_run.py EXPERIMENT [flags]`: an experiment's command line on tfds mock data
(random images), for tests that need a fresh process: several devices, several processes."""

import importlib
import sys

import tensorflow_datasets as tfds

from mnist_jax import cli

if __name__ == "__main__":
    config = importlib.import_module(f"experiments.{sys.argv[1]}").CONFIG
    with tfds.testing.mock_data(num_examples=200):
        cli.main(config, sys.argv[2:])
