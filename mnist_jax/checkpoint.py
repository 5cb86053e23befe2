"""The whole training state saved after every epoch with orbax-checkpoint, and read back.

A checkpoint dir holds one run (one experiment, all its members):

    DIR/run.json                    what is trained: every member's whole config, the groups,
                                    the chunk size, the modules that registered its parts
                                    and the files they were loaded from
    DIR/members-<a>-<b>/<epoch>/    members a..b (1-based) after `epoch` epochs, the last
                                    `KEEP` epochs kept: state (params, optimizer state, step,
                                    keys), per-batch losses, and the history the logs need

    DIR/.lock                       held (flock) by the process writing the run, so a second
                                    process is refused at once; the kernel drops it with its
                                    holder, so a killed run leaves nothing stuck

Orbax writes each epoch into a temporary folder and renames it once complete, so a crash while
saving leaves the previous checkpoint as the latest. An epoch is written on a background thread
from host copies of its state while the next epoch trains; a save that failed (a full disk, the
folder deleted) is raised by the next `save`, by `wait` or by `close`, which stops the run with
the results trained so far and the epoch before the failed one intact on disk. `close` returns
once the last epoch's checkpoint is complete. A multi-process run saves in the foreground:
orbax's save there is a collective that every process must enter in the same order.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from mnist_jax import devices, files, locations, orbax_faults, run_json, writer
from mnist_jax.config import Config, ConfigError
from mnist_jax.train import TrainState

KEEP = 3  # epochs kept per group of members; older ones are deleted
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
MODULE_FILES = "module_files"  # where each module of `modules` was loaded from (`locations`)
# Not compared on resume: the run's length may change (`--epochs` stays the total).
NOT_COMPARED = ("epochs", "steps")


class CheckpointError(ConfigError):
    """A checkpoint dir that cannot be used as asked; the message says what to do."""


class SaveError(files.WriteError):
    """An epoch's checkpoint could not be written; the message says which, what is intact and
    what to do. `runs` gets the chunk's runs up to that epoch on the way out, so that the
    results trained so far are still written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.runs: list = []


@contextlib.contextmanager
def locked(directory: str) -> Iterator[None]:
    """Holds `directory` for this process: another process asking for it is refused at once.

    A folder created here only for its lock is removed again if the run leaves nothing in it.
    """
    created = not os.path.exists(directory)
    path = os.path.join(directory, LOCK_FILE)
    try:
        if why := files.length_problem(path):
            raise OSError(why)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise CheckpointError(
            f"--checkpoint-dir {files.shortened(directory)}: cannot hold checkpoints "
            f"({error.strerror or error}); give another --checkpoint-dir"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            raise CheckpointError(
                f"{directory} is in use by a run in process {holder}: wait for it to end, or "
                "give another --checkpoint-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
        if created and _listing(directory) == [LOCK_FILE]:
            with contextlib.suppress(OSError):
                os.remove(path)
                os.rmdir(directory)


def has_run(directory: str) -> bool:
    """Whether `directory` holds a run's record, so that `--resume` can continue it."""
    return os.path.exists(os.path.join(directory, RUN_FILE))


@dataclasses.dataclass
class Saved:
    """One group of members as a checkpoint left them, on the host."""

    epoch: int  # epochs done
    steps: int  # batches done (diverged members stopped counting earlier)
    state: TrainState  # leading axis M; `key` as raw key data
    batch_losses: np.ndarray  # [M, steps]
    history: list[list[dict]]  # per member, one dict of metrics per epoch done
    run_dirs: list[str]  # the members' log directories


def check_dir(directory: str, record: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """Refuses a checkpoint dir that cannot serve the run `record` describes; writes nothing.

    Resuming needs a checkpoint of the same run; starting afresh needs a directory with no
    checkpoints (or `overwrite`), so one run's checkpoints are never mixed into another's.
    """
    if resume:
        if not os.path.exists(os.path.join(directory, RUN_FILE)):
            raise CheckpointError(
                f"no checkpoint to resume in {directory}; run without --resume to start one"
            )
        differences = compare(read_run(directory), record)
        if differences:
            raise CheckpointError(
                f"the checkpoint in {directory} is of a different run: "
                + "; ".join(differences)
                + ". Resume with the settings it was saved with, or start a new run in "
                "another --checkpoint-dir"
            )
    elif _ours(directory) and not overwrite:
        if not has_run(directory):
            raise CheckpointError(
                f"{directory} holds checkpoints without their {RUN_FILE}, which cannot be "
                "resumed: pass --overwrite to replace them, or choose another --checkpoint-dir"
            )
        held = read_run(directory)
        raise CheckpointError(
            f"{directory} already holds checkpoints of {(held or {}).get('name', 'a run')!r}; "
            "pass --resume to continue that run, --overwrite to replace it, or choose "
            "another --checkpoint-dir"
        )


def start_run(directory: str, record: dict[str, Any]) -> None:
    """Replaces any earlier run's checkpoints in `directory` with the record of a new one."""
    for name in _ours(directory):  # only what a run wrote here: other files in it stay
        path = os.path.join(directory, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.makedirs(directory, exist_ok=True)
    record = {**record, MODULE_FILES: locations.recorded(record.get("modules", []))}
    files.write_atomic(os.path.join(directory, RUN_FILE), json.dumps(record, indent=1))


def _ours(directory: str) -> list[str]:
    return [name for name in _listing(directory) if name == RUN_FILE or _is_group(name)]


def read_run(directory: str) -> dict[str, Any]:
    path = os.path.join(directory, RUN_FILE)
    if not os.path.exists(path):
        raise CheckpointError(
            f"{directory} holds no checkpoint (no {RUN_FILE}): give a --checkpoint-dir that an "
            "experiment wrote"
        )
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as error:
        raise _damaged_record(directory, f"it cannot be read: {error}") from None
    if why := run_json.problem(record):
        raise _damaged_record(directory, why)
    return record


def _damaged_record(directory: str, why: str) -> CheckpointError:
    return CheckpointError(
        f"{os.path.join(directory, RUN_FILE)} is damaged ({why}), so the run cannot be resumed"
        f" or evaluated: start it over with --overwrite, or give another --checkpoint-dir"
    )


def compare(saved: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """What differs between a saved run and the one asked for, setting by setting."""
    differences = [
        f"{k} is {_show(saved.get(k))} in the checkpoint but {_show(record.get(k))} now"
        for k in ("name", "max_members", "search")
        if saved.get(k) != record.get(k)
    ]
    before, now = saved.get("members", []), record.get("members", [])
    if len(before) != len(now):
        return [*differences, f"{len(before)} members in the checkpoint but {len(now)} now"]
    for m, (a, b) in enumerate(zip(before, now, strict=True)):
        a, b = _comparable(a["config"]), _comparable(b["config"])
        differences += [
            f"member {m + 1}'s {k} is {_show(a.get(k))} in the checkpoint but {_show(b.get(k))} now"
            for k in {**a, **b}
            if a.get(k) != b.get(k)
        ]
    return differences[:MAX_DIFFERENCES]


MAX_DIFFERENCES = 6  # listed in a refusal; a sweep can differ in every member


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A member's config by the keys an override sets (`train_step`, `model.hidden`), with the
    defaults of fields a checkpoint written before them lacks."""
    config = Config.from_json(config).to_json()
    flat = {k: v for k, v in config.items() if k not in (*NOT_COMPARED, "tutorial")}
    for kind in ("model", "optimizer", "schedule", "loss", "train_step", "augment"):
        settings = flat.pop(kind)
        flat[kind] = flat.pop(f"{kind}_name")
        flat |= {f"{kind}.{k}": v for k, v in settings.items()}
    return flat


def _show(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _listing(directory: str) -> list[str]:
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def _is_group(name: str) -> bool:
    return name.startswith("members-")


def group_path(directory: str, first: int, count: int) -> str:
    """Where members `first`..`first + count - 1` (0-based) keep their checkpoints."""
    return os.path.join(os.path.abspath(directory), f"members-{first + 1}-{first + count}")


class MemberCheckpoints:
    """The checkpoints of members `first`..`first + count - 1` (0-based) of a run."""

    def __init__(self, directory: str, first: int, count: int):
        self.directory = directory
        self.path = group_path(directory, first, count)
        # Orbax saves synchronously on the thread that calls it: the background thread is this
        # class's own, so a failure is raised here, as a `SaveError`, and nowhere else.
        options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.path, options=options)
        self._background = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
            if jax.process_count() == 1
            else None
        )
        self._writing: Future | None = None

    def save(
        self,
        epoch: int,
        steps: int,
        state_M: TrainState,
        batch_losses_MxS: np.ndarray,
        history: list[list[dict]],
        run_dirs: list[str],
    ) -> None:
        """Starts writing epoch `epoch` and returns once its state is copied to the host.

        Raises `SaveError` if the epoch before it could not be written (the one before that is
        intact), or at once if the checkpoint dir was deleted during the run: orbax would
        recreate a `members-*` folder without the record that makes it resumable.
        """
        self.wait()
        if not has_run(self.directory):
            raise self._deleted(epoch)
        host_state = devices.to_host(state_M.replace(key=jax.random.key_data(state_M.key)))
        # Copies, not views: the next epoch may reuse (donate) the buffers being written.
        host_state = jax.tree.map(lambda leaf: np.array(leaf, copy=True), host_state)
        items = {
            "state": ocp.args.StandardSave(host_state),
            "history": ocp.args.JsonSave(
                {"epoch": epoch, "steps": steps, "members": history, "run_dirs": list(run_dirs)}
            ),
        }
        if batch_losses_MxS.size:  # orbax refuses empty arrays: none before the first epoch
            losses = np.array(batch_losses_MxS, np.float32, copy=True)
            items["batch_losses"] = ocp.args.StandardSave(losses)
        if self._background is None:
            self._write(epoch, items)
        else:
            self._writing = self._background.submit(self._write, epoch, items)

    def _deleted(self, epoch: int) -> SaveError:
        """The checkpoint dir was deleted during the run: what orbax recreated of it while
        saving goes too, so that nothing half a run is left."""
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(self.directory)  # only if empty: the user's own files stay
        return SaveError(
            f"{self.directory} was deleted during the run (its {RUN_FILE} is gone), so the "
            f"checkpoint of epoch {epoch} was not written; start the run again without --resume"
        )

    def wait(self) -> None:
        """Returns once the epoch being written is complete on disk; raises its `SaveError` if
        it could not be written."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _write(self, epoch: int, items: dict) -> None:
        """Writes one epoch whole, the logs synced first (so that they never lag it after a
        power cut), or raises `SaveError` with the epoch before it intact."""
        try:
            writer.sync_written()
        except writer.LogWriteError as error:
            raise SaveError(
                f"{error}; so the checkpoint of epoch {epoch} was not written: "
                f"{orbax_faults.intact(self.manager.all_steps(), epoch, error)}"
            ) from None
        try:
            with orbax_faults.quiet_orbax():
                self.manager.save(epoch, args=ocp.args.Composite(**items))
            if not has_run(self.directory):
                raise self._deleted(epoch)
        except SaveError:
            raise
        except Exception as error:  # orbax and tensorstore raise many kinds for a failed write
            if jax.process_count() > 1 and not orbax_faults.os_error(error):
                raise  # a collective that failed: a lost peer, which the watchdog names
            if not has_run(self.directory):
                raise self._deleted(epoch) from None
            orbax_faults.remove_partial(self.path, epoch)
            left = orbax_faults.intact(self.manager.all_steps(), epoch, error)
            raise SaveError(
                f"the checkpoint of epoch {epoch} could not be written in {self.path} "
                f"({orbax_faults.reason(error)}); {left}"
            ) from None

    def latest(self, like_M: TrainState) -> Saved | None:
        """The newest checkpoint, its state shaped like `like_M`; None if there is none."""
        epoch = self.manager.latest_step()
        if epoch is None:
            return None
        target = jax.tree.map(
            lambda a: np.zeros(a.shape, a.dtype),
            like_M.replace(key=jax.random.key_data(like_M.key)),
        )
        try:
            with orbax_faults.quiet_orbax():
                return self._restore(epoch, target)
        except Exception as error:  # orbax and tensorstore raise many kinds for a damaged file
            raise damaged(self.path, epoch, self.manager.all_steps(), error) from None

    def _restore(self, epoch: int, target) -> Saved:
        """The history of epoch `epoch`, then its state and batch losses shaped as it says."""
        history = self.manager.restore(
            epoch, args=ocp.args.Composite(history=ocp.args.JsonRestore())
        ).history
        items = {"state": ocp.args.StandardRestore(target)}
        if history["steps"]:
            items["batch_losses"] = ocp.args.StandardRestore()
        restored = self.manager.restore(epoch, args=ocp.args.Composite(**items))
        batch_losses = restored.get("batch_losses", np.zeros((len(history["members"]), 0)))
        return Saved(
            epoch=history["epoch"],
            steps=history["steps"],
            state=restored.state,
            batch_losses=np.asarray(batch_losses, np.float32),
            history=history["members"],
            run_dirs=history["run_dirs"],
        )

    def close(self) -> None:
        """Waits for the epoch being written (raising its `SaveError` if it failed), then
        releases the writing thread and orbax's threads and event loops: never left for the
        interpreter's exit, where they print `Event loop is closed` tracebacks."""
        try:
            self.wait()
        finally:
            if self._background is not None:
                self._background.shutdown()
            self.manager.close()


def damaged(path: str, epoch: int, all_epochs, error: Exception) -> CheckpointError:
    text = str(error).strip()
    reason = text.splitlines()[0][:300] if text else type(error).__name__
    earlier = sorted(e for e in all_epochs if e < epoch)
    fallback = (
        f"move {os.path.join(path, str(epoch))} away to resume from epoch {earlier[-1]}, or "
        if earlier
        else ""
    )
    return CheckpointError(
        f"the checkpoint of epoch {epoch} in {path} cannot be read ({reason}); {fallback}"
        "start over with --overwrite or another --checkpoint-dir"
    )
