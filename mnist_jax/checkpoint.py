"""The whole training state of a group of members saved with orbax-checkpoint, and read back.

A group's checkpoints lie in `DIR/members-<a>-<b>/<epoch>/` of a checkpoint dir
(`checkpoint_folder`), the last `KEEP` epochs kept: state (params, optimizer state, step, keys),
per-batch losses, and the history the logs need. Orbax writes each epoch into a temporary folder
and renames it once complete, so a crash while saving leaves the previous checkpoint as the
latest.

A save costs a short run more than its own write: orbax's threads take CPU that training on
every core has none of to spare. So the loop saves an epoch only once `every` seconds have
passed since the last save began (`due`), and always the last epoch and one a signal stops
after; `every=0` saves every epoch. An epoch is written on a background thread from host
copies of its state while the next epoch trains; a save that failed (a full disk, the folder
deleted) is raised by the next `save`, by `wait` or by `close`, which stops the run with the
results trained so far and the checkpoint before the failed one intact on disk. `close`
returns once the last checkpoint is complete. A multi-process run saves in the foreground:
orbax's save there is a collective that every process must enter in the same order.
"""

import contextlib
import dataclasses
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from mnist_jax import devices, orbax_faults, writer
from mnist_jax.checkpoint_folder import RUN_FILE, SaveError, damaged, group_path, has_run
from mnist_jax.train import TrainState

KEEP = 3  # epochs kept per group of members; older ones are deleted


@dataclasses.dataclass
class Saved:
    """One group of members as a checkpoint left them, on the host."""

    epoch: int  # epochs done
    steps: int  # batches done (diverged members stopped counting earlier)
    state: TrainState  # leading axis M; `key` as raw key data
    batch_losses: np.ndarray  # [M, steps]
    history: list[list[dict]]  # per member, one dict of metrics per epoch done
    run_dirs: list[str]  # the members' log directories


class MemberCheckpoints:
    """The checkpoints of members `first`..`first + count - 1` (0-based) of a run."""

    def __init__(self, directory: str, first: int, count: int, every: float = 0.0):
        self.directory = directory
        self.path = group_path(directory, first, count)
        self.every = every  # seconds from one save's start to the next's, at least
        self._last_start = time.monotonic()  # of the last save, or of the run before one
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

    def due(self) -> bool:
        """Whether `every` seconds have passed since the last save began (or the run did):
        process 0's answer on every process, so that they enter the save together."""
        due = time.monotonic() - self._last_start >= self.every
        if jax.process_count() > 1:
            due = bool(multihost_utils.broadcast_one_to_all(np.bool_(due)))
        return due

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
        self._last_start = time.monotonic()
        host_state = devices.to_host(state_M.replace(key=jax.random.key_data(state_M.key)))
        # Copies, not views: the next epoch may reuse (donate) the buffers being written.
        host_state = jax.tree.map(lambda leaf: np.array(leaf, copy=True), host_state)
        record = {"epoch": epoch, "steps": steps, "members": history, "run_dirs": list(run_dirs)}
        items = {
            "state": ocp.args.StandardSave(host_state),
            "history": ocp.args.JsonSave(record),
            "batch_losses": ocp.args.StandardSave(np.array(batch_losses_MxS, np.float32)),
        }
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
