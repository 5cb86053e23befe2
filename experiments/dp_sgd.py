"""DP-SGD (`train_step=dp_sgd`): the five-layer ReLU MLP trained with differential privacy,
each example's gradient clipped to norm 1 and Gaussian noise of 1.1 times that added to every
batch's sum; the privacy spent, (ε, δ), comes from `dp_accounting`'s RDP accountant and is
printed under the table and written to the JSON (`dp_epsilon`, `dp_delta`).

    python -m experiments.dp_sgd --data-dir DATA [train_step.noise_multiplier=...]

Measured with `python -m experiments.dp_sgd --data-dir D --quiet --no-logs` (seed 0, a 2-core
Intel Xeon shared with other jobs, so no speed figure):

    FIGURES
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="dp_sgd",
    model_name="mlp",
    model={"activation": "relu"},
    lr=0.001,
    epochs=3,
    train_step_name="dp_sgd",
    train_step={"clip_norm": 1.0, "noise_multiplier": 1.1, "delta": 1e-5},
)

if __name__ == "__main__":
    cli.main(CONFIG)
