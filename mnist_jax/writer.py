"""TensorBoard logs the tutorial's way: an `epoch` and a `batch` event directory per run.

Layout: `LOGDIR/<experiment>/<run>/{epoch,batch}/` plus `config.json` beside them, so TensorBoard
overlays the runs of a sweep and a script can read back what each run was. Each step is one event
holding all its scalars: a quarter of the cost of one event per scalar, which matters when every
one of 600 batches an epoch is logged for every member of a sweep.
"""

import json
import os
import time

import numpy as np
from tensorboardX import FileWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog
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

    def __init__(self, run_dir: str, config: dict, resume_at: tuple[int, int] | None = None):
        """`resume_at = (epoch, step)`: the first epoch and batch step a resumed run writes.

        TensorBoard hides every point at or past them written before (TensorBoard's purge on
        a session restart, as `SummaryWriter(purge_step=...)`), so the epochs an interrupted run
        logged but did not checkpoint show once, from the resumed run.
        """
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        # tensorboardX names a file by the second and host only, and truncates a file of the
        # same name: a resumed run opened within the same second would erase the first's events.
        # TensorBoard reads a run's files in name order, so the suffix keeps them in time order.
        suffix = f".{time.time_ns()}.{os.getpid()}"
        self.epoch = FileWriter(os.path.join(run_dir, "epoch"), filename_suffix=suffix)
        self.batch = FileWriter(os.path.join(run_dir, "batch"), filename_suffix=suffix)
        if resume_at is not None:
            for writer, step in zip((self.epoch, self.batch), resume_at, strict=True):
                writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))

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

    def flush(self) -> None:
        self.epoch.flush()
        self.batch.flush()

    def close(self) -> None:
        self.epoch.close()
        self.batch.close()
