"""TensorBoard logs the tutorial's way: an `epoch` and a `batch` event directory per run.

Layout: `LOGDIR/<experiment>/<run>/{epoch,batch}/` plus `config.json` beside them, so TensorBoard
overlays the runs of a sweep and a script can read back what each run was. Each step is one event
holding all its scalars: a quarter of the cost of one event per scalar, which matters when every
one of 600 batches an epoch is logged for every member of a sweep.

Beside those, `write_hparams` puts a run's swept values and final test metrics in the run
directory itself (TensorBoard's HParams dashboard: one session per run, its metrics the
`test_*` scalars there and the last points of `epoch/`), and `write_layout` puts one custom-scalars
layout in the experiment directory, charting each train curve with its test (`test_`) curve.

Events are written synchronously, buffered until `flush` appends them in one write: the caller
already writes on a background thread, and tensorboardX's own writer thread dies silently on a
full disk, leaving the process hung on its queue. Here every failure raises `LogWriteError`.
"""

import contextlib
import json
import os
import shutil
import socket
import struct
import threading
import time
from collections.abc import Iterator

import numpy as np
from tensorboardX import summary as tbx_summary
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.record_writer import masked_crc32c

EPOCH_TAGS = ("loss", "accuracy", "binary_accuracy")
BATCH_TAGS = {  # metric of a train step -> its tag, as the tutorial's BatchTensorBoard named them
    "loss": "batch_loss",
    "accuracy": "batch_accuracy",
    "binary_accuracy": "batch_binary_accuracy",
    "learning_rate": "learning_rate",
}
# "tfevents" in the name is what makes TensorBoard read a file; the fixed name keeps it one file.
LAYOUT_FILE = "events.out.tfevents.custom_scalars_layout"


class LogWriteError(OSError):
    """A log could not be written (full disk, directory gone, no permission): one-line message."""


@contextlib.contextmanager
def _reported(directory: str) -> Iterator[None]:
    """Turns an OS error into a `LogWriteError` naming the directory, so a user knows which disk."""
    try:
        yield
    except LogWriteError:
        raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise LogWriteError(f"cannot write TensorBoard logs in {directory}: {reason}") from error


def _append(path: str, data: bytes, create: bool = False) -> None:
    """Appends `data` and syncs it: on disk before an epoch's checkpoint, errors raised here.

    Opened per call, never created unless asked: a run directory deleted under a running writer
    is an error, not a file silently written into the void.
    """
    flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path: str, data: bytes) -> None:
    """Writes a whole file atomically: readers see the old file or the new one, never a part."""
    # No "tfevents" in the name, so TensorBoard never reads a half-written temporary file.
    tmp = os.path.join(
        os.path.dirname(path), f".tmp-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
    )
    try:
        _append(tmp, data, create=True)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _record(event: Event) -> bytes:
    """One event framed as a TFRecord: length, its checksum, the data, its checksum."""
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    return b"".join(
        (
            header,
            struct.pack("<I", masked_crc32c(header)),
            data,
            struct.pack("<I", masked_crc32c(data)),
        )
    )


def _file_version() -> bytes:
    """The first record of every event file, which TensorBoard checks."""
    return _record(Event(wall_time=time.time(), file_version="brain.Event:2"))


def _summary(scalars: dict[str, float]) -> Summary:
    """All of a step's scalars in one summary: one event per step, not one per scalar."""
    return Summary(value=[Summary.Value(tag=tag, simple_value=v) for tag, v in scalars.items()])


class _EventFile:
    """One event file in `directory`; events wait in memory until `flush` appends them at once.

    After a failed write every later call raises the same error: a retry would append after a
    partial record, which TensorBoard's reader stops at.
    """

    def __init__(self, directory: str, suffix: str):
        self.directory = directory
        self.error: LogWriteError | None = None
        # tensorboardX's name (second and host), then the caller's suffix.
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}{suffix}"
        self.path = os.path.join(directory, name)
        self._pending: list[bytes] = []
        with _reported(directory):
            os.makedirs(directory, exist_ok=True)
            _append(self.path, _file_version(), create=True)

    def add(self, event: Event) -> None:
        """Framed now, written at the next `flush`; refused at once once the file has failed."""
        if self.error:
            raise self.error
        self._pending.append(_record(event))

    def flush(self) -> None:
        """Everything pending in one append, so an epoch's events land together or not at all."""
        if self.error:
            raise self.error
        data, self._pending = b"".join(self._pending), []
        if not data:
            return
        try:
            with _reported(self.directory):
                _append(self.path, data)
        except LogWriteError as error:
            self.error = error
            raise

    def close(self) -> None:
        """Writes what is pending; after a failure, which was raised already, there is nothing."""
        if self.error is None:
            self.flush()


class RunWriter:
    """Writes one run's scalars from the arrays a compiled epoch returned.

    Every call returns once its data is in memory (`write_*`) or on disk (`flush`, `close`), or
    raises `LogWriteError`: nothing runs in the background, so nothing can hang.
    """

    def __init__(self, run_dir: str, config: dict, resume_at: tuple[int, int] | None = None):
        """`resume_at = (epoch, step)`: the first epoch and batch step a resumed run writes.

        TensorBoard hides every point at or past them written before (TensorBoard's purge on
        a session restart, as `SummaryWriter(purge_step=...)`), so the epochs an interrupted run
        logged but did not checkpoint show once, from the resumed run.
        """
        self.run_dir = run_dir
        with _reported(run_dir):
            os.makedirs(run_dir, exist_ok=True)
            _replace(os.path.join(run_dir, "config.json"), json.dumps(config, indent=1).encode())
        # tensorboardX names a file by the second and host only: a resumed run opened within the
        # same second would take the first's name. TensorBoard reads a run's files in name
        # order, so the suffix keeps them in time order.
        suffix = f".{time.time_ns()}.{os.getpid()}"
        self.epoch = _EventFile(os.path.join(run_dir, "epoch"), suffix)
        self.batch = _EventFile(os.path.join(run_dir, "batch"), suffix)
        if resume_at is not None:
            for events, step in zip((self.epoch, self.batch), resume_at, strict=True):
                events.add(
                    Event(
                        wall_time=time.time(),
                        step=step,
                        session_log=SessionLog(status=SessionLog.START),
                    )
                )

    def write_batches(self, first_step: int, batch_metrics: dict[str, np.ndarray]) -> None:
        """One point per batch at global steps `first_step, first_step + 1, ...`."""
        columns = {tag: batch_metrics[name].tolist() for name, tag in BATCH_TAGS.items()}
        now = time.time()
        for i, values in enumerate(zip(*columns.values(), strict=True)):
            summary = _summary(dict(zip(columns, values, strict=True)))
            self.batch.add(Event(wall_time=now, step=first_step + i, summary=summary))

    def write_epoch(self, epoch: int, metrics: dict[str, dict[str, float]]) -> None:
        """The epoch's metrics, one point each at step `epoch`: `metrics["train"]` as they are
        named, the test set's as `test_<name>`, the validation split's as `val_<name>`, and
        hyperparameters that change during training (PBT's) as `hparams/<key>`."""
        scalars = {name: metrics["train"][name] for name in EPOCH_TAGS}
        for prefix in ("test", "val"):
            if prefix in metrics:
                scalars |= {f"{prefix}_{name}": metrics[prefix][name] for name in EPOCH_TAGS}
        scalars |= {f"hparams/{k}": v for k, v in metrics.get("hparams", {}).items()}
        self.epoch.add(Event(wall_time=time.time(), step=epoch, summary=_summary(scalars)))

    def flush(self) -> None:
        """The epoch's logs on disk: called before its checkpoint, so logs never lag one."""
        self.epoch.flush()
        self.batch.flush()

    def close(self) -> None:
        """Writes what is pending in both files; returns or raises at once, even after a failure."""
        try:
            self.epoch.close()
        finally:
            self.batch.close()


def claim_run_dir(path: str, overwrite: bool = False) -> str:
    """Creates and returns `path`, or `path-2`, `path-3`, ... if taken: a rerun never mixes into
    earlier logs. `os.mkdir` fails on an existing directory, so runs started at the same moment,
    in threads or processes, each get their own. With `overwrite`, an existing `path` is emptied.
    """
    with _reported(os.path.dirname(path) or "."):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if overwrite:
            shutil.rmtree(path, ignore_errors=True)
        n = 1
        while True:
            candidate = path if n == 1 else f"{path}-{n}"
            try:
                os.mkdir(candidate)
                return candidate
            except FileExistsError:
                n += 1


def _hparam(value):
    """What the HParams dashboard shows: numbers, strings, booleans; lists and the rest as JSON."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | np.number):
        return float(value)
    return json.dumps(value, default=str)


def write_hparams(run_dir: str, hparams: dict[str, object], metrics: dict[str, float]) -> None:
    """Makes the run a session of TensorBoard's HParams dashboard: its values and final metrics.

    In the run directory itself, so the session is the run (`<experiment>/<run>`) and its metrics
    are these scalars plus the last points of `epoch/` and `batch/`. No experiment summary: one
    would define the columns for every run under the log dir, whatever its experiment; without
    it TensorBoard builds them from all the runs' values.
    """
    values = {name: _hparam(v) for name, v in hparams.items()}
    _, start, end = tbx_summary.hparams(values, metrics)
    now = time.time()
    events = [
        Event(wall_time=now, summary=start),
        Event(wall_time=now, summary=_summary({k: float(v) for k, v in metrics.items()})),
        Event(wall_time=now, summary=end),
    ]
    name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{time.time_ns()}.hparams"
    with _reported(run_dir):
        data = _file_version() + b"".join(_record(e) for e in events)
        _append(os.path.join(run_dir, name), data, create=True)


def write_layout(experiment_dir: str) -> None:
    """One chart per metric with its train (`loss`), validation (`val_loss`, with a
    `val_split`) and test (`test_loss`) curves, every run's.

    TensorBoard's Custom Scalars dashboard; the tutorial's point is train loss falling while test
    loss turns up, which separate charts hide. Written once per experiment directory, under a
    fixed name: later runs there find it and leave it.
    """
    path = os.path.join(experiment_dir, LAYOUT_FILE)
    if os.path.exists(path):
        return
    charts = {
        name: ["Multiline", [f"^{name}$", f"^val_{name}$", f"^test_{name}$"]] for name in EPOCH_TAGS
    }
    event = Event(
        wall_time=time.time(), summary=tbx_summary.custom_scalars({"train and test": charts})
    )
    with _reported(experiment_dir):
        os.makedirs(experiment_dir, exist_ok=True)
        _replace(path, _file_version() + _record(event))
