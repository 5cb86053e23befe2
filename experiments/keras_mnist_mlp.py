"""Keras' classic `mnist_mlp.py` example: 784-512-512-10 ReLU, dropout 0.2 after each hidden
layer, RMSprop 0.001 (Keras' rho 0.9 and epsilon 1e-7), batches of 128, 20 epochs; Keras reports
about 0.984 test accuracy, 669,706 parameters.

    python -m experiments.keras_mnist_mlp

Measured (seed 0, 2-core AMD EPYC CPU): MEASURED_PENDING
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="keras_mnist_mlp",
    model_name="mlp",
    model={
        "hidden": [512, 512],
        "activation": "relu",
        "dropout_rate": 0.2,
        "dropout_after": [1, 2],
    },
    optimizer_name="keras_rmsprop",
    learning_rates=(0.001,),
    batch_size=128,
    epochs=20,
)

if __name__ == "__main__":
    cli.main(CONFIG)
