"""The training step: one optimizer step of ONE member on ONE batch. The file to copy.

The library maps a step over a sweep's members (`jax.vmap`), scans it over an epoch's batches
(`lax.scan`) and shards it over devices; a step sees none of that. It takes

- `spec`, the group's static part: `spec.model(h)`, `spec.loss(h)`, `spec.tx(h)` build the
  model, loss and optimizer with the member's float hyperparameters `h = state.hparams`;
- `state`, the member's `train.TrainState` (params, opt_state, step, hparams, ...);
- `batch = (x_BxHxWxC, y_BxK)`, the inputs as the model sees them and one-hot labels;
- `key`, this step's own key (dropout's, or an attack's),

and its settings as keyword-only arguments (`train_step.<name>=...` on the command line; float
settings are data, so sweeping them compiles once). It returns the new state and the batch
metrics (`metrics.BATCH`).

A step of one's own, registered from one's own module and chosen with `train_step=NAME`:

    from mnist_jax.steps import TRAIN_STEPS, apply_gradients, forward, keep_finite, observe

    @TRAIN_STEPS.register("noisy_grads")
    def noisy_grads(spec, state, batch, key, *, sigma: float = 0.01):
        ...  # as `standard` below, with the gradients changed before `apply_gradients`

`fgsm` (adversarial training) and `dp_sgd` (differential privacy) are two such steps, each a
module of this package.
"""

import contextlib
import contextvars

import jax
import jax.numpy as jnp
import optax

from mnist_jax import metrics, optim
from mnist_jax.registry import Registry

TRAIN_STEPS = Registry("train_step", keyword_only=True)
# Figures a step reports of a whole run, by step name: `(names, fn)`, where `fn(config, steps,
# num_examples)` gives `{name: value}` for one member that took `steps` steps over
# `num_examples` training examples (DP-SGD's privacy spent). They reach the JSON, the CSV, the
# table, TensorBoard's test run and its HParams.
RUN_FIGURES: dict = {}


@TRAIN_STEPS.register("standard")
def standard(spec, state, batch, key):
    """Gradient descent on the batch's mean loss, as Keras' `fit` takes it."""
    x_BxHxWxC, y_BxK = batch
    model, loss_fn = spec.model(state.hparams), spec.loss(state.hparams)

    def objective(params):
        logits_BxK, seen = forward(spec, model, params, x_BxHxWxC, key)
        return loss_fn(logits_BxK, y_BxK, params), (logits_BxK, seen)

    (loss, (logits_BxK, seen)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    stepped, learning_rate = apply_gradients(spec, state, grads)
    observed = metrics.Observed(
        logits_BxK, y_BxK, loss, state.params, grads, learning_rate, x_BxHxWxC, seen
    )
    return keep_finite(state, stepped, loss), observe(spec, observed)


def forward(spec, model, params, x_BxHxWxC, key=None):
    """The forward pass, dropout on with `key` (training) and off without (evaluation): logits,
    and the activations the model sows (`self.sow("intermediates", ...)`) when a metric of the
    run reads them, else None."""
    variables = {"params": params}
    train = {"train": True, "rngs": {"dropout": key}} if key is not None else {"train": False}
    if not metrics.reads_activations(spec.metric_names):
        return model.apply(variables, x_BxHxWxC, **train), None
    logits_BxK, sown = model.apply(variables, x_BxHxWxC, **train, mutable=["intermediates"])
    return logits_BxK, sown["intermediates"]


def apply_gradients(spec, state, grads):
    """The optimizer's update from `grads` at the schedule's rate for this step; returns the
    stepped state and that rate."""
    learning_rate = spec.learning_rate(state.step, state.hparams)
    opt_state = optim.with_learning_rate(state.opt_state, learning_rate)
    updates, opt_state = spec.tx(state.hparams).update(grads, opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1), learning_rate


_GUARDED = contextvars.ContextVar("guarded", default=True)


@contextlib.contextmanager
def guard(on: bool):
    """Steps traced inside keep a diverged member's last finite state (`on`), or only mark it
    `diverged` (the loop's epochs while every member is finite: the select over the whole state
    at every step is a sizeable part of an epoch, see docs/performance.md)."""
    token = _GUARDED.set(on)
    try:
        yield
    finally:
        _GUARDED.reset(token)


def keep_finite(state, stepped, loss):
    """The divergence guard: `stepped` while the loss is finite; once it is not, the member
    keeps its last finite state for good (`diverged`), and the other members go on.

    Traced under `guard(False)` it only marks `diverged`; the loop (`train.epoch`) then trains
    an epoch in which a member turned non-finite again from its start with the guard on.
    """
    finite = jnp.isfinite(loss)
    diverged = state.diverged | ~finite
    if not _GUARDED.get():
        return stepped.replace(diverged=diverged)
    keep = finite & ~state.diverged
    kept = jax.tree.map(lambda new, old: jnp.where(keep, new, old), stepped, state)
    return kept.replace(diverged=diverged)


def observe(spec, observed: metrics.Observed) -> dict[str, jax.Array]:
    """The run's batch metrics of what the step saw."""
    return metrics.compute(metrics.at(spec.metric_names, metrics.BATCH), observed)
