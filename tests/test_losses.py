import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mnist_jax import losses, metrics, optim

# Two examples, three classes. Probabilities by hand: row 0 softmax of (ln 6, ln 3, ln 1)
# = (0.6, 0.3, 0.1), true class 0 (argmax right); row 1 = (0.2, 0.5, 0.3) from logs, true 2.
LOGITS = jnp.log(jnp.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]))
Y = jnp.array([[1.0, 0, 0], [0, 0, 1.0]])


def test_accuracy_by_hand():
    assert float(metrics.accuracy(metrics.Observed(LOGITS, Y))) == 0.5


def test_binary_accuracy_by_hand():
    # round(p): row 0 -> (1, 0, 0) all 3 right; row 1 -> (0, 0, 0): right, right, wrong.
    assert float(metrics.binary_accuracy(metrics.Observed(LOGITS, Y))) == pytest.approx(5 / 6)


def test_categorical_cross_entropy_by_hand():
    expected = -(np.log(0.6) + np.log(0.3)) / 2
    assert float(losses.categorical_cross_entropy(LOGITS, Y)) == pytest.approx(expected, rel=1e-6)


def test_binary_cross_entropy_by_hand():
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    y = np.asarray(Y)
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    assert float(losses.binary_cross_entropy(LOGITS, Y)) == pytest.approx(expected, rel=1e-5)


def test_binary_cross_entropy_clips_like_keras_with_no_gradient_past_the_clip():
    saturated = jnp.array([[100.0, 0.0, 0.0]])  # p = (1, ~0, ~0): wrongly sure of class 0
    y = jnp.array([[0.0, 1.0, 0.0]])
    loss = losses.binary_cross_entropy(saturated, y)
    # Clipped in float32 as Keras did: 1 - 1e-7 rounds to 1 - 1.19e-7.
    low, high = np.float32(1e-7), np.float32(1 - 1e-7)
    expected = -(np.log(low) + np.log(1 - np.float64(high))) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert float(jnp.abs(jax.grad(losses.binary_cross_entropy)(saturated, y)).max()) == 0.0


def test_losses_from_logits_stay_finite_on_huge_logits():
    logits = jnp.array([[1e4, -1e4, 0.0]])
    assert jnp.isfinite(losses.categorical_cross_entropy(logits, jnp.array([[0.0, 1, 0]])))


@pytest.mark.parametrize(
    "step, expected",
    [(0, 0.0031), (2000, 0.0001 + 0.003 / np.e), (10000, 0.0001 + 0.003 * np.exp(-5))],
)
def test_lab_decay_values(step, expected):
    assert float(optim.lab_decay(jnp.asarray(step), 0.003)) == pytest.approx(expected, rel=1e-6)


def test_learning_rate_is_data_in_the_optimizer_state():
    tx = optim.make_optimizer("sgd", {})
    params = {"w": jnp.ones(2)}
    state = optim.with_learning_rate(tx.init(params), 0.5)
    updates, _ = tx.update({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], [0.5, 0.5])


@pytest.mark.parametrize(
    "name, settings",
    [
        ("sgd", {"momentum": 0.9}),
        ("adam", {"b1": 0.8}),
        ("adamw", {"weight_decay": 1e-2}),
        ("rmsprop", {}),
        ("keras_rmsprop", {}),
    ],
)
def test_optimizers_keep_their_float_settings_as_data(name, settings):
    assert set(settings) <= set(optim.OPTIMIZERS.defaults(name))
    tx = optim.make_optimizer(name, settings)
    params = {"w": jnp.ones(2)}
    state = optim.with_learning_rate(tx.init(params), 1e-3)
    for key, value in settings.items():
        assert float(state.hyperparams[key]) == pytest.approx(value)
    updates, _ = tx.update({"w": jnp.ones(2)}, state, params)
    assert np.all(np.isfinite(optax.apply_updates(params, updates)["w"]))


def test_keras_rmsprop_has_keras_defaults():
    defaults = optim.OPTIMIZERS.defaults("keras_rmsprop")
    assert (defaults["decay"], defaults["eps"], defaults["eps_in_sqrt"]) == (0.9, 1e-7, False)
