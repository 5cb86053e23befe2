"""Optimizers and learning-rate schedules, registered by name with keyword settings.

Hyperparameters are data, not constants baked into the compiled program: every optimizer is
wrapped in `optax.inject_hyperparams`, its float settings (`b1`, `weight_decay`, ...) live in
the optimizer state, and each step sets its rate from a schedule of `(step, peak, **floats)`.
That lets a sweep over any of them train in one program, and the batch logs show the rate used.

Adding one: `OPTIMIZERS.register("name", factory)` with an optax-style factory whose first
argument is `learning_rate`; `SCHEDULES.register("name", fn)` with `fn(step, peak, **settings)`.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mnist_jax.registry import Registry

OPTIMIZERS = Registry("optimizer", skip=("learning_rate",))
SCHEDULES = Registry("schedule", skip=("step", "peak"))

OPTIMIZERS.register("sgd", optax.sgd)  # with `momentum` (and `nesterov`) for SGD with momentum
OPTIMIZERS.register("adam", optax.adam)
OPTIMIZERS.register("adamw", optax.adamw)
OPTIMIZERS.register("rmsprop", optax.rmsprop)
# Keras' RMSprop: rho 0.9, epsilon 1e-7 added outside the square root.
OPTIMIZERS.register(
    "keras_rmsprop", functools.partial(optax.rmsprop, decay=0.9, eps=1e-7, eps_in_sqrt=False)
)


@SCHEDULES.register("constant")
def constant(step: jax.Array, peak: jax.Array) -> jax.Array:
    del step
    return peak


@SCHEDULES.register("lab_decay")
def lab_decay(
    step: jax.Array, peak: jax.Array, floor: float = 0.0001, decay_steps: float = 2000.0
) -> jax.Array:
    """The lab's decay (its file 2.1): `0.0001 + peak * exp(-step / 2000)`, peak 0.003 there.

    Multiplied by the reciprocal: what XLA made of a constant 2000, so that a traced
    `decay_steps` gives the same rates to the bit (a true division differs by an ulp).
    """
    return floor + peak * jnp.exp(-step * (1.0 / decay_steps))


def make_optimizer(name: str, settings: dict[str, Any]) -> optax.GradientTransformation:
    """The named optimizer with its rate and float settings in `opt_state.hyperparams`.

    Non-float settings (`nesterov`, `eps_in_sqrt`, a `momentum` of None) shape the program and
    stay static; floats may be traced, one value per sweep member.
    """
    static = [k for k, v in settings.items() if not isinstance(v, float | jax.Array)]
    factory = OPTIMIZERS.get(name)
    return optax.inject_hyperparams(factory, static_args=static)(learning_rate=0.0, **settings)


def with_learning_rate(opt_state, learning_rate: jax.Array):
    """`opt_state` with the rate the next update will use."""
    hyperparams = {
        **opt_state.hyperparams,
        "learning_rate": jnp.asarray(learning_rate, jnp.float32),
    }
    return opt_state._replace(hyperparams=hyperparams)


def with_hyperparams(opt_state, values: dict[str, jax.Array]):
    """`opt_state` with the optimizer's float settings `values` (by optax name) replaced."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, **values})
