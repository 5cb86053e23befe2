"""Successive halving and population-based training as policies of the one epoch loop
(`loop.Policy`), between its epochs.

Halving trains the members of each rung as one compiled program of that many members (a smaller
one each rung); PBT trains its population in one program throughout and exploits and explores
between epochs (`pbt.exploit_explore`). Both select on the validation split only, and checkpoint
every epoch as any run does: `--resume` continues through rungs and PBT steps to the same final
numbers.
"""

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np

from mnist_jax import devices, loop, search
from mnist_jax import pbt as pbt_step
from mnist_jax.distributions import Distribution
from mnist_jax.progress import Progress
from mnist_jax.results import Epoch


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


def halving(rungs: list[tuple[int, int]]) -> loop.Policy:
    """Successive halving as a policy of the epoch loop: each rung's survivors train on, as a
    smaller compiled program, to the last rung's end (`search.rungs`)."""
    return loop.Policy(
        epochs=rungs[-1][1], alive=lambda history, epoch: halving_alive(rungs, history, epoch)
    )


def pbt(explore: pbt_step.Explore, interval: int, last: int, seed: int) -> loop.Policy:
    """Population-based training as a policy of the epoch loop: every `interval` epochs but
    after the last, the worst quarter by validation accuracy takes the best quarter's state and
    perturbs it (`pbt.exploit_explore`); each member taken over records whom it copied."""
    key = jax.random.key(seed)

    def between(progress: Progress) -> None:
        epoch = progress.done
        if epoch % interval or epoch >= last:
            return
        scores = np.array([h[-1].values.get("val_accuracy") for h in progress.history], np.float32)
        progress.state, source = pbt_step.exploit_explore(
            progress.state, scores, jax.random.fold_in(key, epoch), explore
        )
        for m, s in enumerate(devices.to_host(source)):
            if s != m:
                history = progress.history[m]
                history[-1] = dataclasses.replace(history[-1], copied_from=int(s))

    return loop.Policy(between=between)


def explore_spec(
    distributions: dict[str, Distribution], float_keys: Sequence[str]
) -> pbt_step.Explore:
    """What PBT perturbs: the searched keys that are float data in the program (a choice among
    names or lists is structure, and refused before)."""
    keys = [k for k in distributions if k in float_keys]
    return pbt_step.Explore(
        keys=tuple(keys),
        kinds=tuple(distributions[k].kind for k in keys),
        values=tuple(tuple(float(v) for v in distributions[k].values) for k in keys),
    )
