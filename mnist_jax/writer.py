"""TensorBoard logs the tutorial's way: an `epoch` and a `batch` event directory per run.

Layout: `LOGDIR/<experiment>/<run>/{epoch,batch}/` plus `config.json` beside them, so TensorBoard
overlays the runs of a sweep and a script can read back what each run was.
"""

import json
import os

import numpy as np
from tensorboardX import SummaryWriter

EPOCH_TAGS = ("loss", "accuracy", "binary_accuracy")
BATCH_TAGS = {  # metric of a train step -> its tag, as the tutorial's BatchTensorBoard named them
    "loss": "batch_loss",
    "accuracy": "batch_accuracy",
    "binary_accuracy": "batch_binary_accuracy",
    "learning_rate": "learning_rate",
}


class RunWriter:
    """Writes one run's scalars; the arrays come from a compiled epoch, so logging never waits
    inside a step."""

    def __init__(self, run_dir: str, config: dict):
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        self.epoch = SummaryWriter(os.path.join(run_dir, "epoch"))
        self.batch = SummaryWriter(os.path.join(run_dir, "batch"))

    def write_batches(self, first_step: int, batch_metrics: dict[str, np.ndarray]) -> None:
        """One point per batch at global steps `first_step, first_step + 1, ...`."""
        for name, tag in BATCH_TAGS.items():
            for step, value in enumerate(batch_metrics[name].tolist(), start=first_step):
                self.batch.add_scalar(tag, value, step)

    def write_epoch(self, epoch: int, train: dict[str, float], val: dict[str, float]) -> None:
        for name in EPOCH_TAGS:
            self.epoch.add_scalar(name, train[name], epoch)
            self.epoch.add_scalar(f"val_{name}", val[name], epoch)

    def close(self) -> None:
        self.epoch.close()
        self.batch.close()
