"""The tutorial's five-layer ReLU network with dropout (five_layer_relu_dropout: 784-200-100-60-
30-10, dropout 0.25 after layers 2, 3 and 4, Adam 0.001) on Fashion-MNIST instead of MNIST:
Zalando's 28x28 grayscale clothing images in 10 classes, built as a drop-in replacement.

    python -m mnist_jax.data prepare FOLDER --dataset fashion_mnist   # the four .gz files, once
    python -m experiments.fashion_mnist_mlp                           # 30 epochs
    python -m experiments.five_layer_relu_dropout dataset=mnist,fashion_mnist   # side by side

Measured: nothing on the real Fashion-MNIST. Its files could not be downloaded on the machine
this was written on (no network), so this module has run only on tfds' mock data (random
images: `tests/test_experiments.py` trains it end to end), which says that it runs, not how
well it learns. Run it on the real files and put the figure here.

What to expect, from the literature (not measured here): Fashion-MNIST is harder than MNIST;
the table of submitted benchmarks in the dataset's README (github.com/zalandoresearch/
fashion-mnist) lists an MLP 256-128-64 at 0.900 test accuracy, a figure its authors say they
have not checked, and their human baseline at 0.835.
"""

import dataclasses

from experiments.five_layer_relu_dropout import CONFIG as MNIST_CONFIG
from mnist_jax import cli

CONFIG = dataclasses.replace(MNIST_CONFIG, name="fashion_mnist_mlp", dataset="fashion_mnist")

if __name__ == "__main__":
    cli.main(CONFIG)
