"""Five dense layers with ReLU and the lab's learning-rate decay (its file 2.1):
`lr = 0.0001 + 0.003 * exp(-step / 2000)` with Adam, for 10,000 steps of 100.

    python -m experiments.five_layer_relu_lrdecay             # scaled pixels, cross-entropy
    python -m experiments.five_layer_relu_lrdecay --tutorial  # raw pixels, binary cross-entropy
    python -m experiments.five_layer_relu_lrdecay --lr 1e-3:1e-2:4   # sweep the peak rate

`--lr` sets the decay's peak (0.003).

Measured (seed 0, 2-core Intel Xeon; `python -m experiments.docs` records it in
docs/results.json): test accuracy 0.9813, binary accuracy 0.9963,
test loss 0.1076. Epoch times: docs/performance.md.
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="five_layer_relu_lrdecay",
    model_name="mlp",
    model={"activation": "relu"},
    optimizer_name="adam",
    schedule_name="lab_decay",
    lr=0.003,
    steps=10_000,
)

if __name__ == "__main__":
    cli.main(CONFIG)
