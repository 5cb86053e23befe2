import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnist_jax import devices, models
from mnist_jax.config import ConfigError

IMAGE = (28, 28, 1)  # one example's input shape: models take image batches B x 28 x 28 x 1
DROPOUT_MLP = models.MLP(dropout_rate=0.25, dropout_after=(2, 3, 4))


def init(model):
    return model.init(jax.random.key(0), jnp.zeros((1, *IMAGE)))["params"]


@pytest.mark.parametrize(
    "model, expected",
    [
        (models.SoftmaxRegression(), 7_850),
        (models.MLP(), 185_300),
        (DROPOUT_MLP, 185_300),
        (models.build("mlp", {"hidden": [512, 512], "dropout_rate": 0.2}), 669_706),
    ],
)
def test_parameter_counts(model, expected):
    assert models.count_params(init(model)) == expected


def test_build_looks_the_name_up_and_refuses_an_unknown_one():
    model = models.build("mlp", {"hidden": [64], "activation": "gelu"}, dtype="bfloat16")
    assert isinstance(model, models.MLP)
    assert (model.hidden, model.activation, model.dtype) == ((64,), "gelu", "bfloat16")
    with pytest.raises(ConfigError, match="unknown model 'mpl'; did you mean 'mlp'"):
        models.build("mpl", {})


def test_keras_initialisation_glorot_uniform_weights_zero_biases():
    params = init(models.MLP())
    kernel = params["dense_1"]["kernel"]
    limit = np.sqrt(6 / (784 + 200))
    assert float(jnp.abs(kernel).max()) <= limit
    assert float(jnp.abs(kernel).max()) > 0.9 * limit
    assert all(float(jnp.abs(layer["bias"]).max()) == 0 for layer in params.values())


def test_layer_table_in_call_order_with_shapes_and_counts():
    rows = models.layer_table(DROPOUT_MLP, IMAGE)
    assert [r[0] for r in rows] == [
        "dense_1",
        "dense_2",
        "dropout_2",
        "dense_3",
        "dropout_3",
        "dense_4",
        "dropout_4",
        "dense_5",
    ]
    assert rows[0] == ("dense_1", "Dense", (None, 200), 157_000)
    assert rows[2] == ("dropout_2", "Dropout", (None, 100), 0)
    summary = models.summary(DROPOUT_MLP, IMAGE)
    assert "Total params: 185,300" in summary


def test_activation_is_a_setting_by_name():
    x = jax.random.normal(jax.random.key(1), (4, *IMAGE))
    relu, sigmoid = models.MLP(activation="relu"), models.MLP(activation="sigmoid")
    params = init(relu)
    assert not np.allclose(relu.apply({"params": params}, x), sigmoid.apply({"params": params}, x))


def test_dropout_on_in_training_off_in_evaluation():
    params = init(DROPOUT_MLP)
    x = jax.random.normal(jax.random.key(1), (8, *IMAGE))
    plain = models.MLP().apply({"params": params}, x)
    evaluated = DROPOUT_MLP.apply({"params": params}, x, train=False)
    np.testing.assert_array_equal(evaluated, plain)
    a, b = (
        DROPOUT_MLP.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(k)})
        for k in (1, 2)
    )
    assert not np.allclose(a, plain) and not np.allclose(a, b)


def test_a_traced_dropout_rate_matches_the_same_rate_given_as_a_number():
    params = init(DROPOUT_MLP)
    x = jax.random.normal(jax.random.key(1), (8, *IMAGE))
    rngs = {"dropout": jax.random.key(3)}

    @jax.jit
    def traced(rate):
        model = models.MLP(dropout_rate=rate, dropout_after=(2, 3, 4))
        return model.apply({"params": params}, x, train=True, rngs=rngs)

    fixed = DROPOUT_MLP.apply({"params": params}, x, train=True, rngs=rngs)
    np.testing.assert_allclose(traced(jnp.float32(0.25)), fixed, rtol=1e-5, atol=1e-5)


def test_bfloat16_matmuls_close_to_float32_with_float32_weight_gradient():
    model = models.MLP()
    bf16 = models.MLP(dtype="bfloat16")
    params = init(model)
    x = jax.random.uniform(jax.random.key(1), (16, *IMAGE))

    def loss(m, p):
        return m.apply({"params": p}, x).sum()

    np.testing.assert_allclose(loss(bf16, params), loss(model, params), rtol=2e-2)
    # Compiled whole, not op by op: one program each rather than one per operation.
    g32 = jax.jit(jax.grad(lambda p: loss(model, p)))(params)
    g16 = jax.jit(jax.grad(lambda p: loss(bf16, p)))(params)
    assert jax.tree.all(jax.tree.map(lambda g: g.dtype == jnp.float32, g16))
    for a, b in zip(jax.tree.leaves(g32), jax.tree.leaves(g16), strict=True):
        assert float(jnp.linalg.norm(b - a) / jnp.linalg.norm(a)) < 0.05


def test_dense_products_are_autodiffs_alone_and_a_custom_vjp_in_a_sweep():
    model = models.build("mlp", {"hidden": [8]})
    x = jnp.ones((4, 28, 28, 1))
    params = model.init(jax.random.key(0), x)["params"]

    def logits(params):
        return model.apply({"params": params}, x)

    # Alone: forward mode works, as through any Flax model.
    _, tangent = jax.jvp(logits, (params,), (jax.tree.map(jnp.ones_like, params),))
    assert tangent.shape == (4, 10)
    assert "custom_vjp_call" not in str(jax.make_jaxpr(logits)(params))
    # Inside train's vmap over members: the product whose weight gradient is x^T @ g.
    params_M = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    mapped = jax.vmap(logits, axis_name=devices.MEMBERS_AXIS)
    assert "custom_vjp_call" in str(jax.make_jaxpr(mapped)(params_M))
    grad = jax.grad(lambda p: jnp.sum(logits(p)))
    grads = jax.vmap(grad, axis_name=devices.MEMBERS_AXIS)(params_M)
    expected = jax.grad(lambda p: jnp.sum(logits(p)))(params)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got[1], want, rtol=1e-5, atol=1e-6)
