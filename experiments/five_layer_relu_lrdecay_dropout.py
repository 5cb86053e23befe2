"""The lab's file 2.2: five ReLU layers, its learning-rate decay, and dropout 0.25 (pkeep 0.75)
after every hidden layer, for 10,000 steps of 100.

    python -m experiments.five_layer_relu_lrdecay_dropout             # scaled, cross-entropy
    python -m experiments.five_layer_relu_lrdecay_dropout --tutorial  # raw pixels, binary

`--lr` sets the decay's peak (0.003).

Measured (seed 0, 2-core Intel Xeon; `python -m experiments.docs` records it in
docs/results.json): test accuracy 0.9805, binary accuracy 0.9962,
test loss 0.0893. Epoch times: docs/performance.md.
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="five_layer_relu_lrdecay_dropout",
    model_name="mlp",
    model={"activation": "relu", "dropout_rate": 0.25, "dropout_after": [1, 2, 3, 4]},
    optimizer_name="adam",
    schedule_name="lab_decay",
    lr=0.003,
    steps=10_000,
)

if __name__ == "__main__":
    cli.main(CONFIG)
