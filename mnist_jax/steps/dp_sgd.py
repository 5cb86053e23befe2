"""DP-SGD (Abadi et al., 2016): every example's gradient clipped to an L2 norm of `clip_norm`,
their sum plus Gaussian noise of standard deviation `noise_multiplier * clip_norm`, over the
batch size; then the run's optimizer as usual. The privacy spent, (ε, δ), is computed after
training by the RDP accountant of Google's `dp_accounting` (`privacy`), never by hand."""

import jax
import jax.numpy as jnp
import optax

from mnist_jax import metrics
from mnist_jax.steps.standard import (
    RUN_FIGURES,
    TRAIN_STEPS,
    apply_gradients,
    keep_finite,
    observe,
)


def _check(settings) -> str | None:
    for name, low in (("clip_norm", 0.0), ("noise_multiplier", 0.0)):
        value = settings[name]
        if not (isinstance(value, int | float) and not isinstance(value, bool) and value > low):
            return f"{name} takes a positive number, got {value!r}"
    delta = settings["delta"]
    if not (isinstance(delta, float) and 0 < delta < 1):
        return f"delta takes a number between 0 and 1, got {delta!r}"
    return None


@TRAIN_STEPS.register("dp_sgd", check=_check)
def dp_sgd(
    spec,
    state,
    batch,
    key,
    *,
    clip_norm: float = 1.0,
    noise_multiplier: float = 1.1,
    delta: float = 1e-5,
):
    """One private step: per-example gradients (`jax.vmap`), each clipped, summed, noised and
    averaged. `delta` is the δ the run's ε is reported at."""
    del delta  # the accountant's, after training
    x_BxHxWxC, y_BxK = batch
    model, loss_fn = spec.model(state.hparams), spec.loss(state.hparams)
    batch_size = x_BxHxWxC.shape[0]
    noise_key, dropout_key = jax.random.split(key)

    def example_objective(params, x_HxWxC, y_K, example_key):
        logits_1xK = model.apply(
            {"params": params}, x_HxWxC[None], train=True, rngs={"dropout": example_key}
        )
        return loss_fn(logits_1xK, y_K[None], params), logits_1xK[0]

    per_example = jax.vmap(
        jax.value_and_grad(example_objective, has_aux=True), in_axes=(None, 0, 0, 0)
    )
    keys_B = jax.random.split(dropout_key, batch_size)
    (losses_B, logits_BxK), grads_B = per_example(state.params, x_BxHxWxC, y_BxK, keys_B)
    norms_B = jax.vmap(optax.tree.norm)(grads_B)
    scale_B = jnp.minimum(1.0, clip_norm / jnp.maximum(norms_B, 1e-12))
    clipped_sum = jax.tree.map(lambda g: jnp.tensordot(scale_B, g, axes=1), grads_B)
    leaves, tree = jax.tree.flatten(clipped_sum)
    noise_keys = jax.random.split(noise_key, len(leaves))
    noised = [
        (leaf + noise_multiplier * clip_norm * jax.random.normal(k, leaf.shape, leaf.dtype))
        / batch_size
        for leaf, k in zip(leaves, noise_keys, strict=True)
    ]
    grads = jax.tree.unflatten(tree, noised)
    loss = losses_B.mean()
    stepped, learning_rate = apply_gradients(spec, state, grads)
    observed = metrics.Observed(
        logits_BxK, y_BxK, loss, state.params, grads, learning_rate, x_BxHxWxC
    )
    return keep_finite(state, stepped, loss), observe(spec, observed)


def figures(config, steps: int, num_examples: int) -> dict[str, float]:
    """The privacy a member spent: `dp_epsilon` at `dp_delta` (the step's `delta`)."""
    settings = config.train_step
    noise, delta = settings["noise_multiplier"], settings["delta"]
    epsilon = privacy(noise, config.batch_size, num_examples, steps, delta)
    return {"dp_epsilon": epsilon, "dp_delta": delta}


RUN_FIGURES["dp_sgd"] = (("dp_epsilon", "dp_delta"), figures)


def privacy(
    noise_multiplier: float, batch_size: int, num_examples: int, steps: int, delta: float
) -> float:
    """The ε of `steps` DP-SGD steps at δ `delta`, by the RDP accountant, each batch taken as a
    Poisson sample of rate `batch_size / num_examples` (the accounting DP-SGD's papers and
    libraries use for shuffled batches too)."""
    from dp_accounting import GaussianDpEvent, PoissonSampledDpEvent, SelfComposedDpEvent
    from dp_accounting.rdp import rdp_privacy_accountant

    accountant = rdp_privacy_accountant.RdpAccountant()
    sampled = PoissonSampledDpEvent(batch_size / num_examples, GaussianDpEvent(noise_multiplier))
    accountant.compose(SelfComposedDpEvent(sampled, steps))
    return float(accountant.get_epsilon(delta))
