"""Runnable modules: `python -m experiments.<name>`; those with a `CONFIG` are experiments."""

import pkgutil
from pathlib import Path

# The tutorial's MNIST experiments, in its order: what the report reproduces.
MNIST_EXPERIMENTS = (
    "softmax",
    "five_layer_sigmoid",
    "five_layer_relu",
    "five_layer_relu_dropout",
    "five_layer_relu_lrdecay",
    "five_layer_relu_lrdecay_dropout",
)


def find_experiments() -> list[str]:
    """Every module of this package that defines a `CONFIG`, found without importing them."""
    folder = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(folder)])
        if not m.ispkg and "\nCONFIG = " in (folder / f"{m.name}.py").read_text()
    )
