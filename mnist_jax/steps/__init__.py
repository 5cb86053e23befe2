"""Training steps, registered by name (`train_step=NAME`): `standard` (the file to copy:
`steps/standard.py`), `fgsm` and `dp_sgd`."""

from mnist_jax.steps import dp_sgd, fgsm  # registers them
from mnist_jax.steps.standard import (
    RUN_FIGURES,
    TRAIN_STEPS,
    apply_gradients,
    forward,
    guard,
    keep_finite,
    observe,
    standard,
)

__all__ = [
    "RUN_FIGURES",
    "TRAIN_STEPS",
    "apply_gradients",
    "dp_sgd",
    "fgsm",
    "forward",
    "guard",
    "keep_finite",
    "observe",
    "standard",
]
