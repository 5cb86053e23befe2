"""Runnable modules: `python -m experiments.<name>`."""

# The tutorial's MNIST experiments, in its order; each module holds a `CONFIG`.
MNIST_EXPERIMENTS = (
    "softmax",
    "five_layer_sigmoid",
    "five_layer_relu",
    "five_layer_relu_dropout",
    "five_layer_relu_lrdecay",
    "five_layer_relu_lrdecay_dropout",
)
