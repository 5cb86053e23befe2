"""Five dense layers with sigmoid, 784-200-100-60-30-10 (the tutorial's section 5, lab file 2.0).

    python -m experiments.five_layer_sigmoid             # Adam 0.003, 20 epochs
    python -m experiments.five_layer_sigmoid --tutorial  # raw pixels, binary cross-entropy

Measured (seed 0, 2-core Intel Xeon; `python -m experiments.docs` records it in
docs/results.json): test accuracy 0.9756, binary accuracy 0.9952,
test loss 0.1196. Epoch times: docs/performance.md.
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="five_layer_sigmoid",
    model_name="mlp",
    model={"activation": "sigmoid"},
    optimizer_name="adam",
    lr=0.003,
    epochs=20,
)

if __name__ == "__main__":
    cli.main(CONFIG)
