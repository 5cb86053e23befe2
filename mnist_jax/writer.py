"""TensorBoard logs the tutorial's way: an `epoch` and a `batch` event directory per run.

Layout: `LOGDIR/<experiment>/<run>/{epoch,batch}/` plus `config.json` beside them, so TensorBoard
overlays the runs of a sweep and a script can read back what each run was. Each step is one event
holding all its scalars: a quarter of the cost of one event per scalar, which matters when every
one of 600 batches an epoch is logged for every member of a sweep.
"""

import json
import os

import numpy as np
from tensorboardX import FileWriter
from tensorboardX.proto.summary_pb2 import Summary

EPOCH_TAGS = ("loss", "accuracy", "binary_accuracy")
BATCH_TAGS = {  # metric of a train step -> its tag, as the tutorial's BatchTensorBoard named them
    "loss": "batch_loss",
    "accuracy": "batch_accuracy",
    "binary_accuracy": "batch_binary_accuracy",
    "learning_rate": "learning_rate",
}


def _summary(scalars: dict[str, float]) -> Summary:
    return Summary(value=[Summary.Value(tag=tag, simple_value=v) for tag, v in scalars.items()])


class RunWriter:
    """Writes one run's scalars from the arrays a compiled epoch returned."""

    def __init__(self, run_dir: str, config: dict):
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        self.epoch = FileWriter(os.path.join(run_dir, "epoch"))
        self.batch = FileWriter(os.path.join(run_dir, "batch"))

    def write_batches(self, first_step: int, batch_metrics: dict[str, np.ndarray]) -> None:
        """One point per batch at global steps `first_step, first_step + 1, ...`."""
        columns = {tag: batch_metrics[name].tolist() for name, tag in BATCH_TAGS.items()}
        for i, values in enumerate(zip(*columns.values(), strict=True)):
            self.batch.add_summary(
                _summary(dict(zip(columns, values, strict=True))), first_step + i
            )

    def write_epoch(self, epoch: int, train: dict[str, float], val: dict[str, float]) -> None:
        scalars = {name: train[name] for name in EPOCH_TAGS}
        scalars |= {f"val_{name}": val[name] for name in EPOCH_TAGS}
        self.epoch.add_summary(_summary(scalars), epoch)

    def close(self) -> None:
        self.epoch.close()
        self.batch.close()
