"""A chunk's training state between epochs, and everything around an epoch that is not
training: fresh or resumed members, their run folders and logs, checkpoints, the progress line.
"""

import dataclasses
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from mnist_jax import commands, devices, init_from, interrupt, metrics, sweep, train
from mnist_jax.checkpoint_folder import CheckpointError, SaveError
from mnist_jax.hparams_logs import session_hparams, write_hparams
from mnist_jax.results import TEST, VAL, Epoch
from mnist_jax.spec import TrainSpec
from mnist_jax.sweep import Member
from mnist_jax.writer import RunWriter, claim_run_dir


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Members trained together: `members[i]` is member `first + i` of the whole sweep."""

    group: int
    index: int | None  # its number within the group, when the group is split by --max-members
    first: int
    members: tuple[Member, ...]
    spec: TrainSpec
    batches: tuple[int, ...]  # batches in each epoch
    traced: tuple[str, ...] = ()  # float hyperparameters recorded every epoch (PBT changes them)


@dataclasses.dataclass(frozen=True)
class Context:
    """What every chunk of a run shares."""

    experiment: str
    mesh: Mesh
    train_xy: tuple[jax.Array, jax.Array]
    test_xy: tuple[jax.Array, jax.Array] | None  # None: the test set is not read every epoch
    val_xy: tuple[jax.Array, jax.Array] | None  # the validation split, when there is one
    logdir: str
    overwrite: bool
    checkpoint_dir: str | None
    checkpoint_every: float  # seconds between saves at least (`checkpoint.MemberCheckpoints`)
    resume: bool
    say: Callable[..., None]
    stop: interrupt.StopOnSignal


@dataclasses.dataclass
class Progress:
    """A chunk's state between epochs."""

    state: train.TrainState
    done: int  # epochs done
    history: list[list[Epoch]]
    batch_losses: list[list[np.ndarray]]
    final: dict[str, np.ndarray]  # the `END` metrics after the last epoch done, `[M, ...]`
    run_dirs: list[str | None]  # None: no logs (--no-logs, or not process 0)
    writers: list[RunWriter]
    store: object | None  # checkpoint.MemberCheckpoints


def hparams_of(members) -> dict[str, jax.Array]:
    """The members' float hyperparameters, one [M] array per key."""
    floats = [sweep.float_hparams(m.config) for m in members]
    return {k: jnp.array([f[k] for f in floats], jnp.float32) for k in floats[0]}


def initial_state(spec: TrainSpec, mesh: Mesh, members, input_shape) -> train.TrainState:
    seeds_M = jnp.array([m.seed for m in members], jnp.int32)
    return train.init_members(spec, mesh, seeds_M, hparams_of(members), input_shape)


def run_config(member: Member, chunk: Chunk, ctx: Context, run_dir: str) -> dict:
    """What `config.json` records beside a run's logs: the member's whole config."""
    return {
        **member.config.to_json(),
        "experiment": ctx.experiment,
        "run": os.path.basename(run_dir),
        "hparams": member.hparams,
        "group": chunk.group,
        "devices": int(ctx.mesh.devices.size),
        "mesh": dict(ctx.mesh.shape),
    }


def start(chunk: Chunk, ctx: Context) -> Progress:
    """Fresh members, or the latest checkpoint of these members when resuming."""
    state = initial_state(chunk.spec, ctx.mesh, chunk.members, ctx.train_xy[0].shape[1:])
    if not ctx.checkpoint_dir:
        return fresh(chunk, ctx, state, None)
    from mnist_jax import checkpoint  # orbax is slow to import: only runs that save pay

    store = checkpoint.MemberCheckpoints(
        ctx.checkpoint_dir, chunk.first, len(chunk.members), ctx.checkpoint_every
    )
    try:
        saved = store.latest(state) if ctx.resume else None
        return (
            fresh(chunk, ctx, state, store) if saved is None else resume(chunk, ctx, saved, store)
        )
    except BaseException:  # a damaged checkpoint, unwritable logs: orbax's threads end now
        store.close()
        raise


def fresh(chunk: Chunk, ctx: Context, state: train.TrainState, store) -> Progress:
    """Members from their initial state (or `init_from`'s parameters), each logging into a new
    run directory."""
    state = init_from.start(chunk.spec, ctx.mesh, chunk.members, state)
    logging = jax.process_index() == 0 and ctx.logdir is not None
    run_dirs = [claim(ctx, m) if logging else None for m in chunk.members]
    writers = [
        RunWriter(d, run_config(m, chunk, ctx, d))
        for d, m in zip(run_dirs, chunk.members, strict=True)
        if d is not None
    ]
    for d, m in zip(run_dirs, chunk.members, strict=True):
        if d is not None:
            hparams = session_hparams(ctx.experiment, m)
            write_hparams(d, f"{os.path.basename(d)} ({ctx.experiment})", hparams)
    empty = [[] for _ in chunk.members]
    progress = Progress(state, 0, empty, [[] for _ in chunk.members], {}, run_dirs, writers, store)
    ctx.say(where(ctx.logdir, run_dirs, ctx.checkpoint_dir))
    return progress


def resume(chunk: Chunk, ctx: Context, saved, store) -> Progress:
    """Members from their latest checkpoint, logging where this command says: into the run
    directories they had when those are under its `logdir`, else into new ones there (none
    with `--no-logs`), never into another log dir the checkpoint happens to name."""
    check_resumable(saved, chunk.batches, store.path)
    resume_at = (saved.epoch + 1, saved.steps + 1)
    run_dirs = saved.run_dirs
    if jax.process_index() == 0:
        run_dirs = [
            resumed_run_dir(ctx, m, d) for m, d in zip(chunk.members, run_dirs, strict=True)
        ]
    writers = [
        RunWriter(d, run_config(m, chunk, ctx, d), resume_at)
        for d, m in zip(run_dirs, chunk.members, strict=True)
        if jax.process_index() == 0 and d is not None
    ]
    ctx.say(f"resuming after epoch {saved.epoch} ({saved.steps} steps) from {store.path}")
    ctx.say(where(ctx.logdir, run_dirs, ctx.checkpoint_dir))
    return Progress(
        state=devices.place_state(ctx.mesh, saved.state),
        done=saved.epoch,
        history=[[Epoch.from_json(e) for e in h] for h in saved.history],
        batch_losses=[
            [row[: sum(chunk.batches[: len(h)])]]  # a halved member's padding cut off
            for row, h in zip(saved.batch_losses, saved.history, strict=True)
        ],
        final={},
        run_dirs=run_dirs,
        writers=writers,
        store=store,
    )


def resumed_run_dir(ctx: Context, member: Member, saved: str | None) -> str | None:
    """The saved run directory if it lies where this command logs, else a new one there."""
    if ctx.logdir is None:
        return None
    if saved is not None:
        here = os.path.join(ctx.logdir, ctx.experiment, os.path.basename(saved))
        if os.path.abspath(here) == saved:
            return saved
    return claim(ctx, member)


def where(logdir: str | None, run_dirs: list[str | None], checkpoint_dir: str | None) -> str:
    """The runs' own folders by name (a rerun's `-2` too), the checkpoints, and the command
    that shows the logs: `logs in logs/softmax/lr_0.5-seed_0-2; view with: tensorboard ...`,
    each path as `usable_here` gives it."""
    paths = [usable_here(d) for d in run_dirs if d is not None]
    if not paths:
        places = ["no logs written"]
    elif len(paths) == 1:
        places = [f"logs in {paths[0]}"]
    else:
        folders = list(dict.fromkeys(os.path.dirname(d) for d in paths))
        names = paths if len(folders) > 1 else [os.path.basename(d) for d in paths]
        more = len(names) - RUNS_SHOWN
        listed = ", ".join(names[:RUNS_SHOWN]) + (f" and {more} more" if more > 0 else "")
        inside = "" if len(folders) > 1 else f" in {folders[0]}{os.sep}"
        places = [f"logs of {len(paths)} runs{inside}: {listed}"]
    if checkpoint_dir:
        places.append(f"checkpoints in {usable_here(checkpoint_dir)}")
    view = f"; view with: {commands.tensorboard(usable_here(logdir))}" if paths and logdir else ""
    return ", ".join(places) + view


RUNS_SHOWN = 8  # run folders named in a line; a larger sweep says how many more
CHECKOUT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the README's folder


def usable_here(path: str) -> str:
    """`path` as one can use it from the folder the run started in: relative in the checkout
    (where the README's commands run and its `logs/` lies) when it is inside, else absolute: a
    bare `logs/...` printed elsewhere would leave the folder it is in unnamed."""
    absolute, here = os.path.abspath(path), os.getcwd()
    inside = here == CHECKOUT and absolute.startswith(here + os.sep)
    return os.path.relpath(absolute, here) if inside else absolute


def claim(ctx: Context, member: Member) -> str:
    """A fresh run directory named by what differs, as an absolute path: resumable from
    another working directory."""
    path = os.path.join(ctx.logdir, ctx.experiment, sweep.run_name(member))
    return os.path.abspath(claim_run_dir(path, ctx.overwrite))


def check_resumable(saved, batches: tuple[int, ...], path: str) -> None:
    if saved.epoch > len(batches):
        raise CheckpointError(
            f"the checkpoint in {path} is after epoch {saved.epoch}, past the {len(batches)} "
            f"epoch(s) asked: --epochs counts from the start, so ask for at least {saved.epoch}"
        )
    if saved.steps != sum(batches[: saved.epoch]):
        raise CheckpointError(
            f"the checkpoint in {path} is after {saved.steps} steps, but epoch {saved.epoch} of "
            f"this run ends after {sum(batches[: saved.epoch])}: resume with the --steps it was "
            "saved with, or more whole epochs of it"
        )


def save(progress: Progress) -> None:
    """The checkpoint of the epoch just done; members that trained fewer steps (successive
    halving stops some) have their batch losses padded with NaN."""
    rows = [np.concatenate(b) if b else np.zeros(0, np.float32) for b in progress.batch_losses]
    steps = max(len(row) for row in rows)
    losses_MxS = np.stack([np.pad(r, (0, steps - len(r)), constant_values=np.nan) for r in rows])
    progress.store.save(
        progress.done,
        int(losses_MxS.shape[1]),
        progress.state,
        losses_MxS,
        [[e.to_json() for e in h] for h in progress.history],
        progress.run_dirs,
    )


def save_or_fail(progress: Progress):
    """Saves the epoch just trained; returns the `SaveError` if it failed."""
    try:
        save(progress)
    except SaveError as error:
        return error
    return None


def wait_or_fail(store):
    """Waits for the checkpoint being written; returns its `SaveError` if it failed, so that
    the results trained so far are still written."""
    try:
        store.wait()
    except SaveError as error:
        return error
    return None


def write_logs(progress: Progress, epoch: int, first_step: int, batch_metrics: dict) -> None:
    for m, writer in enumerate(progress.writers):
        last = progress.history[m][epoch - 1]  # the main thread may have appended the next
        writer.write_batches(first_step, {k: v[m] for k, v in batch_metrics.items()})
        writer.write_epoch(last)
        writer.flush()  # on disk before the epoch's checkpoint, and before a crash


def write_final(progress: Progress) -> None:
    """The `END` metrics of the last epoch done, in each member's test run."""
    for m, writer in enumerate(progress.writers):
        writer.write_final(progress.done, {k: v[m] for k, v in progress.final.items()})
        writer.flush()


def progress_line(chunk: Chunk, progress: Progress, total: int, seconds: float) -> str:
    """A single run's every metric with a `short` label: training's, the validation split's
    (`val_`) and the test set's (`test_`), each when there is one; a sweep's members ranked by
    validation accuracy when there is a split, else by test accuracy."""
    line = f"epoch {progress.done}/{total}  {seconds:.2f}s"
    if len(chunk.members) == 1:
        values = progress.history[0][-1].values
        shown = [
            f"{prefix}{metrics.get(k).short} {values[prefix + k]:.4f}"
            for prefix in ("", VAL, TEST)
            for k in chunk.spec.metric_names
            if metrics.get(k).short and prefix + k in values
        ]
        return "  ".join([line, *shown])
    prefix = VAL if f"{VAL}accuracy" in progress.history[0][-1].values else TEST
    accuracies = [
        (h[-1].values.get(f"{prefix}accuracy", float("nan")), sweep.run_name(m))
        for h, m in zip(progress.history, chunk.members, strict=True)
    ]
    shown = sorted(accuracies, reverse=True)[:PROGRESS_SHOWN]
    more = f" (best {len(shown)} of {len(accuracies)})" if len(shown) < len(accuracies) else ""
    ranked = ", ".join(f"{name} {acc:.4f}" for acc, name in shown)
    return f"{line}  {prefix}acc{more} {ranked}"


PROGRESS_SHOWN = 6  # members named in a sweep's progress line
