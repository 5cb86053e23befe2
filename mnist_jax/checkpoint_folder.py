"""A checkpoint dir: the record of the run it holds, its lock, and the checks that it can serve
a run. Nothing here imports orbax, so a run checks its checkpoint dir before paying for orbax.

    DIR/run.json                    what is trained: every member's whole config, the groups,
                                    the chunk size, the modules that registered its parts
                                    and the files they were loaded from
    DIR/members-<a>-<b>/<epoch>/    members a..b (1-based) after `epoch` epochs
                                    (`checkpoint.MemberCheckpoints`)
    DIR/.lock                       held (flock) by the process writing the run, so a second
                                    process is refused at once; the kernel drops it with its
                                    holder, so a killed run leaves nothing stuck
"""

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

from mnist_jax import files, locations, run_json
from mnist_jax.config import Config, ConfigError

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


def has_saved_epoch(directory: str) -> bool:
    """Whether a group of `directory`'s members holds a complete saved epoch (orbax names it by
    the epoch alone once written whole), so that `--resume` does not start from the first."""
    groups = [os.path.join(directory, n) for n in _listing(directory) if _is_group(n)]
    return any(name.isdigit() for group in groups for name in _listing(group))


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
