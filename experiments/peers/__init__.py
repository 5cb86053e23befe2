"""The five-layer ReLU MLP written in other frameworks, as yardsticks for `experiments.benchmark`
(and `torch_cnn`, the lab's CNN, trained on the same contract).

Each peer is a fresh process with one contract:

    python -m experiments.peers.<name> --data MNIST.npz --epochs N [--seed S]

The .npz holds `x_train` float32 [60000, 784] in [0, 1], `y_train` int32 [60000] and `x_test`,
`y_test` likewise. The peer trains 784 -> 200 -> 100 -> 60 -> 30 -> 10 (ReLU, softmax
cross-entropy from logits, Glorot-uniform weights, zero biases, Adam 1e-3, batch 100, a fresh
shuffle every epoch; MNIST's 60,000 make 600 whole batches) and prints one JSON line on stdout:
`{"name", "epoch_seconds", "test_accuracy"}`. An epoch's seconds are wall clock from before its
shuffle to the moment no work of it is left pending; the test set is evaluated after training,
untimed.

This module imports no framework: the benchmark driver and the peers share it.
"""

import argparse
import json

import numpy as np

SIZES = (784, 200, 100, 60, 30, 10)
LEARNING_RATE = 1e-3
BATCH_SIZE = 100
NUM_THREADS = 2  # the benchmark machine's cores


def parse_args(description: str, argv: list[str] | None = None, **flags: str) -> argparse.Namespace:
    """The peers' shared flags; `flags` adds boolean ones, name -> help text."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help=".npz with x_train, y_train, x_test, y_test")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    for name, help_text in flags.items():
        parser.add_argument(f"--{name}", action="store_true", help=help_text)
    return parser.parse_args(argv)


def load_npz(path: str) -> dict[str, np.ndarray]:
    """The four arrays, checked against the contract above."""
    with np.load(path) as npz:
        data = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != SIZES[0]:
            raise ValueError(f"x_{split}: want float32 [N, {SIZES[0]}], got {x.dtype} {x.shape}")
        if y.shape != x.shape[:1]:
            raise ValueError(f"y_{split}: want shape {x.shape[:1]}, got {y.shape}")
        data[f"y_{split}"] = y.astype(np.int32)
    return data


def report(name: str, epoch_seconds: list[float], test_accuracy: float) -> None:
    """Print the peer's one JSON line on stdout."""
    record = {
        "name": name,
        "epoch_seconds": [float(s) for s in epoch_seconds],
        "test_accuracy": float(test_accuracy),
    }
    print(json.dumps(record), flush=True)
