"""Five dense layers with ReLU and dropout 0.25 after the activations of layers 2, 3 and 4, as
the tutorial's section 7 placed it.

    python -m experiments.five_layer_relu_dropout             # Adam 0.001, 30 epochs
    python -m experiments.five_layer_relu_dropout --tutorial  # raw pixels, binary cross-entropy

Measured (seed 0, 2-core Intel Xeon; `python -m experiments.docs` records it in
docs/results.json): test accuracy 0.9795, binary accuracy 0.9959,
test loss 0.1436. Epoch times: docs/performance.md.
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="five_layer_relu_dropout",
    model_name="mlp",
    model={"activation": "relu", "dropout_rate": 0.25, "dropout_after": [2, 3, 4]},
    optimizer_name="adam",
    lr=0.001,
    epochs=30,
)

if __name__ == "__main__":
    cli.main(CONFIG)
