"""Successive halving and population-based training, driving `loop` over one group of members.

Halving keeps every member's state on the host and trains the members of each rung as one
compiled program of that many members (a smaller one each rung); PBT trains its population in
one program throughout and exploits and explores between epochs (`pbt.exploit_explore`). Both
select on the validation split only, and checkpoint every epoch: `--resume` continues through
rungs and PBT steps to the same final numbers.
"""

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import numpy as np

import mnist_jax
from mnist_jax import devices, interrupt, loop, pbt, search
from mnist_jax.distributions import Distribution
from mnist_jax.results import Epoch, Run


def halving_alive(
    rungs: Sequence[tuple[int, int]], history: Sequence[Sequence[Epoch]], epoch: int
) -> list[int]:
    """The members (ascending) that train `epoch` (1-based): all in the first rung; in each
    later one the best of the previous rung's by validation accuracy at its end; none past the
    last rung. A pure function of the histories, so a resumed search keeps the same ones."""
    alive = list(range(len(history)))
    for k, (_, end) in enumerate(rungs):
        if epoch <= end:
            return alive
        if k + 1 == len(rungs):
            break
        scores = [history[m][end - 1].values.get("val_accuracy") for m in alive]
        alive = sorted(alive[i] for i in search.ranking(scores)[: rungs[k + 1][0]])
    return []


def host_state(state_M):
    """A stacked state on the host, writable, its keys as raw key data (what
    `devices.place_state` takes back)."""
    host = devices.to_host(state_M.replace(key=jax.random.key_data(state_M.key)))
    return jax.tree.map(lambda leaf: np.array(leaf, copy=True), host)


def train_halving(
    chunk: loop.Chunk,
    contexts: Callable[[int], loop.Context],
    data_seed: int,
    rungs: list[tuple[int, int]],
) -> tuple[list[Run], float, int]:
    """Trains `chunk`'s members rung by rung (`search.rungs`); returns every member's run, with
    the epochs it actually trained, the start-up time and the epochs done."""
    ctx = contexts(len(chunk.members))
    progress = loop.start(chunk, ctx)
    full = host_state(progress.state)
    data_key = jax.random.key(data_seed)
    startup_seconds = time.perf_counter() - mnist_jax.IMPORT_TIME
    last, alive, part, state = rungs[-1][1], None, None, None
    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=1) as log_thread:
        try:
            for epoch in range(progress.done + 1, last + 1):
                loop.raise_failed(pending)
                now = halving_alive(rungs, progress.history, epoch)
                if now != alive:  # a new rung: a smaller program over the survivors
                    alive, ctx = now, contexts(len(now))
                    state = devices.place_state(ctx.mesh, take(full, now))
                    part = dataclasses.replace(chunk, members=tuple(chunk.members[m] for m in now))
                    ctx.say(f"rung: {len(now)} member(s) train to epoch {_rung_end(rungs, epoch)}")
                sub = _subset(progress, alive, state)
                seconds, batch_metrics = loop.run_epoch(part, ctx, sub, data_key)
                state = sub.state
                progress.done = epoch
                if sub.writers:
                    first_step = sum(chunk.plan[: epoch - 1]) + 1
                    pending.append(
                        log_thread.submit(loop.write_logs, sub, epoch, first_step, batch_metrics)
                    )
                ctx.say(loop.progress_line(part, sub, last, seconds))
                part_host = host_state(sub.state)
                for leaf, new in zip(
                    jax.tree.leaves(full), jax.tree.leaves(part_host), strict=True
                ):
                    leaf[alive] = new
                if progress.store:
                    if pending:
                        pending[-1].result()
                    progress.state = _on_device(full)
                    loop.save(progress)
                if bool(part_host.diverged.all()) or interrupt.agreed_stop(ctx.stop) is not None:
                    break
        finally:
            pending += [log_thread.submit(w.close) for w in progress.writers]
            if progress.store:
                progress.store.close()
    for future in pending:
        future.result()
    progress.state = full
    runs = loop.collect(chunk, progress, np.asarray(full.diverged), ctx.mesh.shape)
    return runs, startup_seconds, progress.done


def take(state_M, members: list[int]):
    """The `members` of a stacked host state."""
    return jax.tree.map(lambda leaf: leaf[members], state_M)


def _rung_end(rungs, epoch: int) -> int:
    return next(end for _, end in rungs if epoch <= end)


def _subset(progress: loop.Progress, alive: list[int], state) -> loop.Progress:
    """The alive members' view of `progress`: their lists are the same objects, so what an
    epoch appends reaches the whole population's record."""
    return loop.Progress(
        state=state,
        done=progress.done,
        history=[progress.history[m] for m in alive],
        batch_losses=[progress.batch_losses[m] for m in alive],
        final={},  # a search evaluates the test set for its choice only, at the end
        run_dirs=[progress.run_dirs[m] for m in alive],
        writers=[progress.writers[m] for m in alive] if progress.writers else [],
        store=None,
    )


def _on_device(full):
    """The host state with its keys typed again, as a checkpoint saves it."""
    return full.replace(key=jax.random.wrap_key_data(full.key))


def explore_spec(distributions: dict[str, Distribution], float_keys: Sequence[str]) -> pbt.Explore:
    """What PBT perturbs: the searched keys that are float data in the program (a choice among
    names or lists is structure, and refused before)."""
    keys = [k for k in distributions if k in float_keys]
    return pbt.Explore(
        keys=tuple(keys),
        kinds=tuple(distributions[k].kind for k in keys),
        values=tuple(tuple(float(v) for v in distributions[k].values) for k in keys),
    )


def pbt_between(explore: pbt.Explore, interval: int, last: int, seed: int):
    """`loop.train_chunk`'s hook for PBT: every `interval` epochs but after the last, the worst
    quarter by validation accuracy takes the best quarter's state and perturbs it; each member
    taken over records whom it copied."""
    key = jax.random.key(seed)

    def between(progress: loop.Progress) -> None:
        epoch = progress.done
        if epoch % interval or epoch >= last:
            return
        scores = np.array([h[-1].values.get("val_accuracy") for h in progress.history], np.float32)
        progress.state, source = pbt.exploit_explore(
            progress.state, scores, jax.random.fold_in(key, epoch), explore
        )
        for m, s in enumerate(devices.to_host(source)):
            if s != m:
                history = progress.history[m]
                history[-1] = dataclasses.replace(history[-1], copied_from=int(s))

    return between
