"""The lab's convolutional network (its file 3.1): 6@6x6 stride 1, 12@5x5 stride 2, 24@4x4
stride 2, dense 200 with dropout 0.25 (pkeep 0.75), 10; Adam with the lab's learning-rate decay,
10,000 steps of 100. The lab reports 0.989 without dropout and 0.993 with it.

    python -m experiments.gorner_cnn
    python -m experiments.gorner_cnn model.dropout_rate=0   # the lab's run without dropout

Measured (seed 0, 2-core AMD EPYC CPU): MEASURED_PENDING
"""

from mnist_jax import cli
from mnist_jax.config import Config

CONFIG = Config(
    name="gorner_cnn",
    model_name="gorner_cnn",
    model={"dropout_rate": 0.25},
    optimizer_name="adam",
    schedule_name="lab_decay",
    learning_rates=(0.003,),
    steps=10_000,
)

if __name__ == "__main__":
    cli.main(CONFIG)
