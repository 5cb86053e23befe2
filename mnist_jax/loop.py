"""The one epoch loop: trains a chunk of members epoch after epoch; a search's policy acts
between epochs.

Logs are written on a background thread while the next epoch computes; a failed write stops
the run at the next epoch's end. With a checkpoint dir the state is saved after an epoch once
the checkpoint's interval has passed (`MemberCheckpoints.due`), and after the last epoch or the
one a signal stops after, each time once that epoch's logs are on disk, so a resumed run's logs
continue where its checkpoint does. Every chunk, plain or searched, gets the same wall times,
divergence reports, stop on a signal and handling of a failed save.
"""

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import numpy as np

import mnist_jax
from mnist_jax import devices, interrupt, metrics, progress, steps, sweep, train
from mnist_jax.progress import Chunk, Context, Progress
from mnist_jax.results import TEST, VAL, Epoch, Run


@dataclasses.dataclass(frozen=True)
class Policy:
    """What a search does between epochs (`strategies`); the default trains every member to the
    end of the chunk's epochs."""

    epochs: int | None = None  # epochs to train; None: all of the chunk's
    # The members (ascending indices) that train an epoch, from every member's history so far
    # and the epoch (1-based); a smaller set trains as a smaller compiled program.
    alive: Callable[[Sequence[Sequence[Epoch]], int], list[int]] | None = None
    between: Callable[[Progress], None] | None = None  # after an epoch's logs, before its save


@dataclasses.dataclass
class Training:
    """The members that train now: all of them, or a policy's survivors, as their own chunk
    and progress (whose lists are the whole population's, so what an epoch appends reaches
    every record) on a mesh of their size."""

    alive: list[int]
    chunk: Chunk
    progress: Progress
    ctx: Context


def train_chunk(
    chunk: Chunk, contexts: Callable[[int], Context], data_seed: int, policy: Policy = Policy()
) -> tuple[list[Run], float, int]:
    """Trains `chunk` to the end of its epochs (or the policy's), until every member training
    has diverged, or until a stop signal; returns its runs, the start-up time to its first step
    and the epochs done. `contexts(n)`: where n members train.

    A checkpoint that cannot be written stops it after that epoch: `checkpoint.SaveError` is
    raised with the chunk's runs up to there."""
    ctx = contexts(len(chunk.members))
    whole = progress.start(chunk, ctx)
    order_key = jax.random.key(data_seed)
    last = policy.epochs or len(chunk.batches)
    first_step = sum(chunk.batches[: whole.done]) + 1
    startup_seconds = time.perf_counter() - mnist_jax.IMPORT_TIME
    diverged = np.array(devices.to_host(whole.state.diverged))
    population = None  # every member's state on the host, while a policy trains some
    now = Training(list(range(len(chunk.members))), chunk, whole, ctx)
    pending: list[Future] = []
    failed = None
    with ThreadPoolExecutor(max_workers=1) as log_thread:
        try:
            for epoch in range(whole.done + 1, last + 1):
                raise_failed(pending)  # a log dir that filled up stops the run now
                if policy.alive is not None:
                    if population is None:
                        population = host_state(whole.state)
                    alive = policy.alive(whole.history, epoch)
                    if alive != now.alive or now.progress is whole:
                        now = survivors(alive, chunk, whole, population, contexts(len(alive)))
                epoch_start = time.perf_counter()
                trained = train.epoch(
                    now.chunk.spec,
                    now.ctx.mesh,
                    now.progress.state,
                    now.ctx.train_xy,
                    jax.random.fold_in(order_key, epoch),
                    chunk.batches[epoch - 1],
                )
                jax.block_until_ready(trained[0])
                seconds = time.perf_counter() - epoch_start
                batch_metrics = record_epoch(now, trained, seconds)
                whole.done = epoch
                if now.progress.writers:
                    logs = (now.progress, epoch, first_step, batch_metrics)
                    pending.append(log_thread.submit(progress.write_logs, *logs))
                first_step += chunk.batches[epoch - 1]
                now.ctx.say(progress.progress_line(now.chunk, now.progress, last, seconds))
                if population is not None:
                    store(population, now.alive, host_state(now.progress.state))
                    whole.state = on_device(population)
                if policy.between is not None:
                    policy.between(whole)
                diverged[now.alive] = report_divergence(now, diverged[now.alive])
                stop = interrupt.agreed_stop(now.ctx.stop) is not None
                ending = epoch == last or diverged[now.alive].all() or stop
                if whole.store and (ending or whole.store.due()):
                    if pending:
                        pending[-1].result()  # logs first: a checkpoint never runs ahead
                    failed = progress.save_or_fail(whole)
                record_wall(now.progress, time.perf_counter() - epoch_start)
                if failed or ending:
                    break
            if whole.done:
                whole.final = {**whole.final, **run_figures(chunk, whole, len(ctx.train_xy[0]))}
            if whole.store and not failed:  # the last checkpoint, written while those ran
                failed = progress.wait_or_fail(whole.store)
            if whole.writers and whole.done and whole.final:
                pending.append(log_thread.submit(progress.write_final, whole))
        finally:
            pending += [log_thread.submit(w.close) for w in whole.writers]
            if whole.store:
                whole.store.close()
    for future in pending:
        future.result()  # a failed write surfaces here
    if population is not None:
        whole.state = population
    runs = collect(chunk, whole, diverged, now.ctx.mesh.shape)
    if failed:
        failed.runs = runs
        raise failed
    return runs, startup_seconds, whole.done


def survivors(
    alive: list[int], chunk: Chunk, whole: Progress, population, ctx: Context
) -> Training:
    """The members `alive` as a chunk of their own, their state taken from the population's
    and placed on `ctx`'s mesh (a smaller compiled program than the whole chunk's)."""
    ctx.say(f"{len(alive)} of {len(chunk.members)} member(s) train from epoch {whole.done + 1}")
    view = Progress(
        state=devices.place_state(ctx.mesh, jax.tree.map(lambda leaf: leaf[alive], population)),
        done=whole.done,
        history=[whole.history[m] for m in alive],
        batch_losses=[whole.batch_losses[m] for m in alive],
        final={},  # a search evaluates the test set for its choice only, at the end
        run_dirs=[whole.run_dirs[m] for m in alive],
        writers=[whole.writers[m] for m in alive] if whole.writers else [],
        store=None,
    )
    members = tuple(chunk.members[m] for m in alive)
    return Training(alive, dataclasses.replace(chunk, members=members), view, ctx)


def host_state(state_M: train.TrainState) -> train.TrainState:
    """A stacked state on the host, writable, its keys as raw key data (what
    `devices.place_state` takes back)."""
    host = devices.to_host(state_M.replace(key=jax.random.key_data(state_M.key)))
    return jax.tree.map(lambda leaf: np.array(leaf, copy=True), host)


def store(population: train.TrainState, alive: list[int], state: train.TrainState) -> None:
    """Writes the `alive` members' host `state` into the population's."""
    for leaf, new in zip(jax.tree.leaves(population), jax.tree.leaves(state), strict=True):
        leaf[alive] = new


def on_device(population: train.TrainState) -> train.TrainState:
    """The host population with its keys typed again, as a checkpoint saves it."""
    return population.replace(key=jax.random.wrap_key_data(population.key))


def record_epoch(now: Training, trained, seconds: float) -> dict[str, np.ndarray]:
    """Evaluates the epoch just `trained` (`train.train_epoch`'s state and metrics, which took
    `seconds`) and appends its records; returns the per-batch metrics `[M, batches]`."""
    state, batch_metrics, epoch_metrics = trained
    chunk, ctx, view = now.chunk, now.ctx, now.progress
    epoch = view.done + 1
    evaluated = {
        prefix: train.evaluate(chunk.spec, ctx.mesh, state.params, state.hparams, xy)
        for prefix, xy in ((TEST, ctx.test_xy), (VAL, ctx.val_xy))
        if xy is not None
    }
    final = evaluated[TEST][1] if TEST in evaluated else {}
    evaluated = {prefix: figures for prefix, (figures, _) in evaluated.items()}
    traced = {k: state.hparams[k] for k in chunk.traced}
    batch_metrics, epoch_metrics, evaluated, final, traced = devices.to_host(
        (batch_metrics, epoch_metrics, evaluated, final, traced)
    )
    for m in range(len(chunk.members)):
        view.batch_losses[m].append(batch_metrics["loss"][m])
        values = metrics.reduce({k: v[m] for k, v in batch_metrics.items()})
        values |= {k: float(v[m]) for k, v in epoch_metrics.items()}
        for prefix, figures in evaluated.items():
            values |= {f"{prefix}{k}": float(v[m]) for k, v in figures.items()}
        hparams = {k: float(v[m]) for k, v in traced.items()} if traced else None
        view.history[m].append(Epoch(epoch, values, seconds, hparams=hparams))
    view.state, view.done, view.final = state, epoch, final
    return batch_metrics


def record_wall(view: Progress, wall_seconds: float) -> None:
    """The epoch's time with everything around it (evaluation, metric transfer, handing the
    logs over, the checkpoint), next to its compiled `seconds`."""
    for history in view.history:
        history[-1] = dataclasses.replace(history[-1], wall_seconds=wall_seconds)


def raise_failed(pending: list[Future]) -> None:
    for future in pending:
        if future.done() and future.exception() is not None:
            raise future.exception()


def collect(chunk: Chunk, whole: Progress, diverged: np.ndarray, mesh_shape) -> list[Run]:
    steps, params = devices.to_host((whole.state.step, whole.state.params))
    return [
        Run(
            member=member,
            group=chunk.group,
            chunk=chunk.index,
            run_dir=whole.run_dirs[m],
            history=whole.history[m],
            batch_losses=np.concatenate(whole.batch_losses[m]),
            diverged=bool(diverged[m]),
            diverged_at_step=int(steps[m]) + 1 if diverged[m] else None,
            mesh=dict(mesh_shape),
            final={k: v[m] for k, v in whole.final.items()},
            params=jax.tree.map(lambda leaf, m=m: leaf[m], params),
        )
        for m, member in enumerate(chunk.members)
    ]


def run_figures(chunk: Chunk, whole: Progress, num_examples: int) -> dict[str, np.ndarray]:
    """What the run's step reports of the whole run (`steps.RUN_FIGURES`), `[M]` each."""
    if chunk.spec.train_step_name not in steps.RUN_FIGURES:
        return {}
    _, report = steps.RUN_FIGURES[chunk.spec.train_step_name]
    taken = [sum(len(b) for b in losses) for losses in whole.batch_losses]
    rows = [report(m.config, n, num_examples) for m, n in zip(chunk.members, taken, strict=True)]
    return {k: np.array([row[k] for row in rows]) for k in rows[0]}


def report_divergence(now: Training, diverged_before: np.ndarray) -> np.ndarray:
    """Says which of the members training diverged in the last epoch; returns which have by
    now."""
    diverged, steps = devices.to_host((now.progress.state.diverged, now.progress.state.step))
    for m in np.flatnonzero(diverged & ~diverged_before):
        name = sweep.run_name(now.chunk.members[m])
        now.ctx.say(f"{name}: loss not finite at step {steps[m] + 1}; it stops there")
    return diverged
