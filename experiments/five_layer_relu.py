"""Five dense layers with ReLU, 784-200-100-60-30-10 (the tutorial's section 6): the main
experiment.

    python -m experiments.five_layer_relu             # Adam 0.001, 30 epochs
    python -m experiments.five_layer_relu --tutorial  # raw pixels, binary cross-entropy

Measured (seed 0, this repo's 2-core CPU): RESULT_PENDING
"""

import flax.linen as nn

from mnist_jax import cli, models
from mnist_jax.config import Config

CONFIG = Config(
    name="five_layer_relu",
    model=models.MLP(activation=nn.relu),
    optimizer="adam",
    learning_rates=(0.001,),
    epochs=30,
)

if __name__ == "__main__":
    cli.main(CONFIG)
