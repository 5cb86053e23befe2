"""TensorBoard logs laid out as Keras writes them: a `train` and a `test` run per member.

Layout: `LOGDIR/<experiment>/<run>/{train,test}/` plus `config.json` and the member's hparams
beside them, and `validation/` for the validation split's figures when there is one; `test` is
made at the member's first test figures (a search evaluates only the member it chooses). The runs
carry the same tags (`epoch_loss`, `epoch_accuracy`, ...), so TensorBoard's Time Series overlays
each member's training and test curves on one chart; `train` also holds every batch's value
(`batch_loss`, ..., the tutorial's curves) and the per-epoch figures of the parameters
(`weight_norm/dense_1`); `test` gets the end's (`class_accuracy/3`, the confusion matrix as an
image, drawn by `matrix_png`). Which metric goes where is declared once, in `metrics`. Each
step is one event holding all its scalars, and an epoch's batch events are framed together with
numpy (`events`): every one of 600 batches an epoch is logged for every member of a sweep.

`hparams_logs` writes the HParams dashboard's files (each member's session, the log dir's
experiment record) with `reported`, `create`, `replace_whole` and `event_file` from here, so
their failures are the same one-line `LogWriteError`.

Events are written synchronously, buffered until `flush` appends them in one write: the caller
already writes on a background thread, and tensorboardX's own writer thread dies silently on a
full disk, leaving the process hung on its queue. Here every failure raises `LogWriteError`.
Appends are not synced one by one; `sync_written` syncs them all before a checkpoint.
"""

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.summary_pb2 import Summary

from mnist_jax import events, matrix_png, metrics

TRAIN, TEST, VALIDATION = "train", "test", "validation"  # a member's runs


class LogWriteError(OSError):
    """A log could not be written (full disk, directory gone, no permission): one-line message."""


@contextlib.contextmanager
def reported(directory: str) -> Iterator[None]:
    """Turns an OS error into a `LogWriteError` naming the directory, so a user knows which disk."""
    try:
        yield
    except LogWriteError:
        raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise LogWriteError(f"cannot write TensorBoard logs in {directory}: {reason}") from error


_UNSYNCED: set[str] = set()  # files appended to since `sync_written` last ran
_UNSYNCED_LOCK = threading.Lock()


def _append(path: str, data: bytes, create: bool = False) -> None:
    """Appends `data`: in the page cache when this returns, and errors (a full disk, a folder
    gone) raised here. Not synced: an fsync per file per epoch cost a 64-member sweep more
    than all its framing; `sync_written` syncs them all before a checkpoint relies on them.

    Opened per call, never created unless asked: a run directory deleted under a running writer
    is an error, not a file silently written into the void.
    """
    flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    with _UNSYNCED_LOCK:
        _UNSYNCED.add(path)


def sync_written() -> None:
    """Syncs every log file appended to since the last call, so that after a power cut the
    logs never lag a checkpoint: a checkpoint's save calls it before writing the epoch."""
    with _UNSYNCED_LOCK:
        paths = sorted(_UNSYNCED)
        _UNSYNCED.clear()
    for path in paths:
        with reported(os.path.dirname(path)):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # a run directory removed since (a test's, a replaced run's)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def replace_whole(path: str, data: bytes) -> None:
    """Writes a whole file atomically: readers see the old file or the new one, never a part.
    Synced with the event files, by `sync_written`."""
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
    with _UNSYNCED_LOCK:
        _UNSYNCED.discard(tmp)
        _UNSYNCED.add(path)


def create(path: str, data: bytes) -> None:
    """A new file holding `data` (an error if `path` exists), synced by `sync_written`."""
    _append(path, data, create=True)


def event_file(*summaries: Summary) -> bytes:
    """A whole event file: the version record, then one event for each summary."""
    now = time.time()
    return _file_version() + b"".join(_record(Event(wall_time=now, summary=s)) for s in summaries)


def _record(event: Event) -> bytes:
    """One event framed as a TFRecord: length, its checksum, the data, its checksum."""
    return events.frame(event.SerializeToString())


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
        with reported(directory):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory)  # in a run directory that exists: never one made anew
            _append(self.path, _file_version(), create=True)

    def add(self, event: Event) -> None:
        """Framed now, written at the next `flush`; refused at once once the file has failed."""
        self.add_records(_record(event))

    def add_records(self, records: bytes) -> None:
        """Records framed already, written at the next `flush`."""
        if self.error:
            raise self.error
        self._pending.append(records)

    def flush(self) -> None:
        """Everything pending in one append, so an epoch's events land together or not at all."""
        if self.error:
            raise self.error
        data, self._pending = b"".join(self._pending), []
        if not data:
            return
        try:
            with reported(self.directory):
                _append(self.path, data)
        except LogWriteError as error:
            self.error = error
            raise

    def close(self) -> None:
        """Writes what is pending; after a failure, which was raised already, there is nothing."""
        if self.error is None:
            self.flush()


class RunWriter:
    """Writes one member's `train` and `test` runs from the arrays a compiled epoch returned.

    Every call returns once its data is in memory (`write_*`) or in its file (`flush`, `close`), or
    raises `LogWriteError`: nothing runs in the background, so nothing can hang.
    """

    def __init__(self, run_dir: str, config: dict, resume_at: tuple[int, int] | None = None):
        """`resume_at = (epoch, step)`: the first epoch and batch step a resumed run writes.

        TensorBoard hides every point at or past them written before (TensorBoard's purge on
        a session restart, as `SummaryWriter(purge_step=...)`): the batch step in `train`, the
        epoch in `test`. A `train` epoch point logged past the checkpoint (a crash between the
        logs and the checkpoint) shows twice at that epoch.
        """
        self.run_dir = run_dir
        with reported(run_dir):
            os.makedirs(run_dir, exist_ok=True)
            replace_whole(
                os.path.join(run_dir, "config.json"), json.dumps(config, indent=1).encode()
            )
        # tensorboardX names a file by the second and host only: a resumed run opened within the
        # same second would take the first's name. TensorBoard reads a run's files in name
        # order, so the suffix keeps them in time order.
        self.suffix = f".{time.time_ns()}.{os.getpid()}"
        self.resume_at = resume_at
        self.runs: dict[str, _EventFile] = {}
        self.train = self._run(TRAIN)

    @property
    def test(self) -> "_EventFile":
        """Made at its first figures: a search's members, never evaluated on the test set, have
        no `test` run, the chosen one gets its own (`write_chosen`)."""
        return self._run(TEST)

    def _run(self, name: str) -> "_EventFile":
        """The event file of run `name` (`train`, `test`, `validation`), created at first use."""
        if name not in self.runs:
            self.runs[name] = _EventFile(os.path.join(self.run_dir, name), self.suffix)
            if self.resume_at is not None:
                epoch, step = self.resume_at
                start = SessionLog(status=SessionLog.START)
                first = step if name == TRAIN else epoch
                self.runs[name].add(Event(wall_time=time.time(), step=first, session_log=start))
        return self.runs[name]

    def write_batches(self, first_step: int, batch_metrics: dict[str, np.ndarray]) -> None:
        """`batch_<name>` of every batch at global steps `first_step, first_step + 1, ...`."""
        columns = {f"batch_{name}": values for name, values in batch_metrics.items()}
        self.train.add_records(events.scalar_events(time.time(), first_step, columns))

    def write_epoch(self, epoch) -> None:
        """A `results.Epoch`'s values at step `epoch.epoch`: the training batches' reductions as
        `train/epoch_<name>`, the test set's as `test/epoch_<name>`, the validation split's as
        `validation/epoch_<name>`, the parameters' as `train/<name>`, and hyperparameters that
        change during training (PBT's) as `train/hparams/<key>`."""
        now = time.time()
        tags = epoch_tags(epoch.values)
        tags[TRAIN] |= {f"hparams/{k}": v for k, v in (epoch.hparams or {}).items()}
        for name, scalars in tags.items():
            summary = _summary(scalars)
            self._run(name).add(Event(wall_time=now, step=epoch.epoch, summary=summary))

    def write_final(self, epoch: int, final: dict[str, np.ndarray]) -> None:
        """The `END` metrics in `test` at step `epoch`: scalars, vectors as `<name>/<i>`,
        matrices as an image."""
        self.test.add(_final_event(epoch, final))

    def flush(self) -> None:
        """The epoch's logs in their files: called before its checkpoint, so logs never lag one
        (synced by `sync_written`, which the checkpoint's save calls)."""
        for run in self.runs.values():
            run.flush()

    def close(self) -> None:
        """Writes what is pending in every file; returns or raises at once, even after a
        failure (the first error raised, every file closed)."""
        errors = []
        for run in self.runs.values():
            try:
                run.close()
            except LogWriteError as error:
                errors.append(error)
        if errors:
            raise errors[0]


def write_chosen(run_dir: str, epoch, final: dict[str, np.ndarray]) -> None:
    """A search's chosen member's test figures, evaluated after its training ended, in its
    `test` run: its last epoch's `test_` values at that epoch and its `END` metrics, so
    TensorBoard's Time Series and its HParams session show what the JSON and table do."""
    run = _EventFile(os.path.join(run_dir, TEST), f".{time.time_ns()}.{os.getpid()}")
    scalars = epoch_tags(epoch.values).get(TEST, {})
    run.add(Event(wall_time=time.time(), step=epoch.epoch, summary=_summary(scalars)))
    if final:
        run.add(_final_event(epoch.epoch, final))
    run.close()


def _final_event(epoch: int, final: dict[str, np.ndarray]) -> Event:
    """The `END` metrics at step `epoch`: scalars, vectors as `<name>/<i>`, matrices as an
    image."""
    scalars, images = {}, []
    for name, value in final.items():
        if value.ndim == 2:
            images.append(_matrix_image(name, value))
        else:
            scalars |= {
                f"{name}/{i}" if value.ndim else name: float(v)
                for i, v in enumerate(np.atleast_1d(value))
            }
    summary = _summary(scalars)
    summary.value.extend(images)
    return Event(wall_time=time.time(), step=epoch, summary=summary)


def epoch_tags(values: dict[str, float]) -> dict[str, dict[str, float]]:
    """An epoch record's values as each run's tags, Keras' names: `{"train": {"epoch_loss":
    ..., "weight_norm/dense_1": ...}, "test": {"epoch_loss": ...}, "validation": ...}`."""
    tags: dict[str, dict[str, float]] = {TRAIN: {}}
    for key, value in values.items():
        for prefix, run in ((metrics.TEST_PREFIX, TEST), (metrics.VAL_PREFIX, VALIDATION)):
            if key.startswith(prefix):
                tags.setdefault(run, {})[f"epoch_{key.removeprefix(prefix)}"] = value
                break
        else:
            batch = metrics.BATCH in metrics.get(key.partition("/")[0]).where
            tags[TRAIN][f"epoch_{key}" if batch else key] = value
    return tags


def _matrix_image(name: str, matrix_KxK: np.ndarray) -> Summary.Value:
    """A confusion matrix as a PNG heat map with its counts: true class down, predicted across."""
    png, height, width = matrix_png.confusion_png(matrix_KxK)
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
    return Summary.Value(tag=name, image=image)


def claim_run_dir(path: str, overwrite: bool = False) -> str:
    """Creates and returns `path`, or `path-2`, `path-3`, ... if taken: a rerun never mixes into
    earlier logs. `os.mkdir` fails on an existing directory, so runs started at the same moment,
    in threads or processes, each get their own. With `overwrite`, an existing `path` is emptied.
    """
    with reported(os.path.dirname(path) or "."):
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
