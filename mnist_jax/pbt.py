"""Population-based training's exploit-and-explore step, one pure function over the stacked
state (every leaf's leading axis is the member), jit-compiled once for a population.

The worst quarter by validation accuracy copies parameters, optimizer state and hyperparameters
from members of the best quarter (exploit), then perturbs each searched float hyperparameter
by x0.8 or x1.25, or with a small probability resamples it from its distribution (explore),
kept inside the distribution's range. Hyperparameters are data, so the same compiled epoch
trains the population before and after: nothing recompiles.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from mnist_jax import optim
from mnist_jax.train import TrainState

FACTORS = (0.8, 1.25)
RESAMPLE_PROBABILITY = 0.2


@dataclasses.dataclass(frozen=True)
class Explore:
    """The searched float keys, each with its distribution as plain numbers: `kind` one of
    `search.KINDS`, `values` its (low, high) or its choices. Hashable: static in the program."""

    keys: tuple[str, ...]
    kinds: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]


def quarter(members: int) -> int:
    """Members replaced at each step: a quarter, at least one when there are two or more."""
    return max(1, members // 4) if members >= 2 else 0


@functools.partial(jax.jit, static_argnames=("explore",), donate_argnames=("state_M",))
def exploit_explore(
    state_M: TrainState, scores_M: jax.Array, key: jax.Array, explore: Explore
) -> tuple[TrainState, jax.Array]:
    """The population after one step, and `source_M`: the member each copied (itself when it
    was kept). A NaN score (a diverged member) counts as the worst."""
    members = scores_M.shape[0]
    q = quarter(members)
    order_M = jnp.argsort(-jnp.nan_to_num(scores_M, nan=-jnp.inf), stable=True)
    copy_key, explore_key = jax.random.split(key)
    picks_Q = jax.random.randint(copy_key, (q,), 0, q)
    source_M = jnp.arange(members).at[order_M[members - q :]].set(order_M[picks_Q])
    copied = jax.tree.map(
        lambda leaf: leaf[source_M],
        (state_M.params, state_M.opt_state, state_M.hparams, state_M.diverged),
    )
    params, opt_state, hparams, diverged = copied
    replaced_M = source_M != jnp.arange(members)
    hparams = dict(hparams)
    for i, key_name in enumerate(explore.keys):
        new_M = perturb(
            jax.random.fold_in(explore_key, i),
            hparams[key_name],
            explore.kinds[i],
            explore.values[i],
        )
        hparams[key_name] = jnp.where(replaced_M, new_M, hparams[key_name])
    optimizer = {k.partition(".")[2]: v for k, v in hparams.items() if k.startswith("optimizer.")}
    opt_state = optim.with_hyperparams(opt_state, optimizer)
    state_M = state_M.replace(
        params=params, opt_state=opt_state, hparams=hparams, diverged=diverged
    )
    return state_M, source_M


def perturb(key: jax.Array, value_M: jax.Array, kind: str, values: tuple) -> jax.Array:
    """Each member's value moved by one of `FACTORS` (a choice among numbers: to a neighbour),
    or resampled with `RESAMPLE_PROBABILITY`; always inside the distribution's range."""
    members = value_M.shape[0]
    resample_key, draw_key, move_key = jax.random.split(key, 3)
    resample_M = jax.random.bernoulli(resample_key, RESAMPLE_PROBABILITY, (members,))
    up_M = jax.random.bernoulli(move_key, 0.5, (members,))
    if kind == "choice":
        choices = jnp.asarray(sorted(values), jnp.float32)
        drawn_M = choices[jax.random.randint(draw_key, (members,), 0, len(values))]
        at_M = jnp.argmin(jnp.abs(choices[None, :] - value_M[:, None]), axis=1)
        moved_M = choices[jnp.clip(at_M + jnp.where(up_M, 1, -1), 0, len(values) - 1)]
        return jnp.where(resample_M, drawn_M, moved_M)
    low, high = (float(v) for v in values)
    if kind == "loguniform":
        drawn_M = jnp.exp(jax.random.uniform(draw_key, (members,), minval=jnp.log(low),
                                             maxval=jnp.log(high)))  # fmt: skip
    else:
        drawn_M = jax.random.uniform(draw_key, (members,), minval=low, maxval=high)
    moved_M = value_M * jnp.where(up_M, FACTORS[1], FACTORS[0])
    return jnp.clip(jnp.where(resample_M, drawn_M, moved_M), low, high)
