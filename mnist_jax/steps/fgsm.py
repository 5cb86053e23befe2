"""FGSM adversarial training (Goodfellow et al., 2015): each step's objective is the mean of the
clean batch's loss and the loss of the batch moved `epsilon` along the sign of its input
gradient, in the pixel scale the model sees (0..1 scaled, 0..255 raw). The attack is the one
`evaluate --attack fgsm` runs (`attacks.fgsm`)."""

import jax

from mnist_jax import attacks, metrics
from mnist_jax.steps.standard import TRAIN_STEPS, apply_gradients, forward, keep_finite, observe


def _check(settings) -> str | None:
    epsilon = settings["epsilon"]
    if not (isinstance(epsilon, int | float) and not isinstance(epsilon, bool) and epsilon >= 0):
        return f"epsilon takes a number of at least 0, got {epsilon!r}"
    return None


@TRAIN_STEPS.register("fgsm", check=_check)
def fgsm(spec, state, batch, key, *, epsilon: float = 0.1):
    """Gradient descent on `(loss(x) + loss(fgsm(x))) / 2`, the attack made against the
    parameters before the step, with dropout off (the attack's own gradient is not trained
    through)."""
    x_BxHxWxC, y_BxK = batch
    model, loss_fn = spec.model(state.hparams), spec.loss(state.hparams)
    low, high = 0.0, spec.pixel_max

    def attacked_loss(x):
        logits = model.apply({"params": state.params}, x, train=False)
        return loss_fn(logits, y_BxK, None) * x.shape[0]  # summed: each example's own gradient

    x_adv = attacks.fgsm(attacked_loss, x_BxHxWxC, epsilon, low, high)

    def objective(params):
        logits_BxK, seen = forward(spec, model, params, x_BxHxWxC, key)
        logits_adv, _ = forward(spec, model, params, x_adv, jax.random.fold_in(key, 1))
        clean = loss_fn(logits_BxK, y_BxK, params)
        return (clean + loss_fn(logits_adv, y_BxK, params)) / 2, (logits_BxK, seen)

    (loss, (logits_BxK, seen)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    stepped, learning_rate = apply_gradients(spec, state, grads)
    observed = metrics.Observed(
        logits_BxK, y_BxK, loss, state.params, grads, learning_rate, x_BxHxWxC, seen
    )
    return keep_finite(state, stepped, loss), observe(spec, observed)
