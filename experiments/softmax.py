"""Softmax regression, 784 -> 10: the tutorial's first model (and the lab's file 1.0).

    python -m experiments.softmax               # SGD 0.5, scaled pixels, cross-entropy, 20 epochs
    python -m experiments.softmax --tutorial    # SGD 0.005, raw pixels, binary cross-entropy

Why 0.5 and not the tutorial's 0.005: SGD 0.005 on a batch-mean loss of scaled pixels reaches
only about 0.90 in 20 epochs; the lab's 0.005 was applied to a loss summed over the batch of
100, i.e. 0.5 on a mean loss, and the tutorial's raw pixels scale its gradients up by far more.

Measured (seed 0, 2-core Intel Xeon; `python -m experiments.docs` records it in
docs/results.json): test accuracy 0.9235, binary accuracy 0.9852,
test loss 0.2718. Epoch times: docs/performance.md.
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="softmax",
    model_name="softmax",
    optimizer_name="sgd",
    lr=0.5,
    epochs=20,
    tutorial={"lr": 0.005},
)

if __name__ == "__main__":
    cli.main(CONFIG)
