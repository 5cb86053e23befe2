"""The models as Flax Linen modules: `init`/`apply` are pure, params a plain pytree.

Every model maps image batches `x_BxHxWxC` to class logits `logits_BxK`; the softmax lives in
the losses, which work from logits for numerical stability. Dense layers use Keras' defaults
(Glorot-uniform weights, zero biases) so the tutorial's settings carry over.

Adding a model: a Linen module whose fields are plain JSON values (numbers, names, lists), with a
`dtype` field for `--dtype`, registered by name (`@MODELS.register("name")`, from any module).
A float field may arrive traced, one value per sweep member (a swept dropout rate trains in one
compiled program), so never branch on a float field in Python.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mnist_jax import conv, devices
from mnist_jax.registry import Registry

MODELS = Registry("model")
KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()
NUM_CLASSES = 10
ACTIVATIONS = {f.__name__: f for f in (nn.relu, nn.sigmoid, nn.tanh, nn.gelu, nn.elu, nn.silu)}


def _dense(features: int, name: str, dtype: str) -> nn.Dense:
    """Flax's Dense; in bfloat16, or inside a sweep's vmap over members, with a custom VJP for
    its product (see `float32_dot_general`). Elsewhere autodiff's own, so `jax.jvp` and the
    like work through a lone model."""
    if dtype == "bfloat16":
        products = bfloat16_dot_general
    elif devices.members_mapped() > 1:
        products = float32_dot_general
    else:
        products = None  # lax.dot_general
    return nn.Dense(
        features,
        kernel_init=KERAS_KERNEL_INIT,
        bias_init=nn.initializers.zeros,
        name=name,
        dot_general=products,
    )


class Dropout(nn.Module):
    """Flax's `nn.Dropout` (the same mask for the same key) with a rate that may be traced."""

    rate: Any

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if not train:
            return x
        keep = 1.0 - jnp.asarray(self.rate, jnp.float32)
        mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep, shape=x.shape)
        return jax.lax.select(mask, x / keep.astype(x.dtype), jnp.zeros_like(x))


def check_settings(settings: dict[str, Any]) -> str | None:
    """What is wrong with the built-in models' settings: widths below 1 (a layer of no units
    divides by zero in its initialiser), a dropout rate outside [0, 1) (1 drops everything and
    divides by zero), a dropout rate with no layer to follow, dropout after a layer the model
    lacks."""
    for key in ("hidden", "channels", "dense"):
        widths = settings.get(key)
        for width in widths if isinstance(widths, list | tuple) else [widths]:
            if width is not None and width < 1:
                return f"{key} takes widths of at least 1, got {settings[key]!r}"
    rate = settings.get("dropout_rate", 0.0)
    if not 0.0 <= rate < 1.0:
        return f"dropout_rate takes a fraction from 0 up to (not including) 1, got {rate!r}"
    layers = len(settings.get("hidden", ()))
    if rate and settings.get("dropout_after") == []:
        shown = ",".join(map(str, range(1, layers + 1)))
        return (
            f"dropout_rate={rate:g} applies to no layer: give the hidden layers it follows, "
            f"e.g. model.dropout_after=[{shown}]"
        )
    if any(not 1 <= layer <= layers for layer in settings.get("dropout_after", ())):
        return (
            f"dropout_after takes hidden layer numbers from 1 to {layers}, "
            f"got {settings['dropout_after']!r}"
        )
    if settings.get("conv", conv.AUTO) not in conv.CHOICES:
        return f"conv takes one of {', '.join(conv.CHOICES)}, got {settings['conv']!r}"
    if len(settings.get("channels", (0,) * 3)) != 3:
        return f"channels takes 3 widths, one per convolution, got {settings['channels']!r}"
    return None


@MODELS.register("softmax", check=check_settings)
class SoftmaxRegression(nn.Module):
    """One dense layer, 784 -> 10: the tutorial's first model (7,850 parameters)."""

    num_classes: int = NUM_CLASSES
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array, *, train: bool = False) -> jax.Array:
        del train  # nothing differs between training and evaluation
        x_BxD = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        return _dense(self.num_classes, "dense_1", self.dtype)(x_BxD)


@MODELS.register("mlp", check=check_settings)
class MLP(nn.Module):
    """Dense layers `hidden` wide with `activation`, then a dense output layer.

    `dropout_after` lists the hidden layers (1-based) whose activations are followed by dropout at
    `dropout_rate`; the tutorial puts it after layers 2, 3 and 4, the lab after all four.
    The default shape is the lab's five-layer network, 784-200-100-60-30-10 (185,300 parameters).
    Each hidden layer's activation is sown as `intermediates/hidden_<i>`, for metrics
    that read it (`metrics.Observed.activations`); nothing is kept unless one asks.
    """

    hidden: Sequence[int] = (200, 100, 60, 30)
    activation: str = "relu"
    dropout_rate: float = 0.0
    dropout_after: Sequence[int] = ()
    num_classes: int = NUM_CLASSES
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array, *, train: bool = False) -> jax.Array:
        h = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        activation = ACTIVATIONS[self.activation]
        for layer, width in enumerate(self.hidden, start=1):
            h = activation(_dense(width, f"dense_{layer}", self.dtype)(h))
            self.sow("intermediates", f"hidden_{layer}", h)
            if layer in self.dropout_after:
                h = Dropout(self.dropout_rate, name=f"dropout_{layer}")(h, train)
        return _dense(self.num_classes, f"dense_{len(self.hidden) + 1}", self.dtype)(h)


class Conv(nn.Module):
    """A 'same'-padded 2-D convolution, `x_BxHxWxC` -> `y_BxH'xW'xF`, Keras' initialisation.

    `impl` names how it is computed (`conv.IMPLEMENTATIONS`), or `auto`: chosen by measurement
    on a CPU, XLA's convolution elsewhere (see `mnist_jax.conv`). All read the same `kernel`
    (HWIO) and `bias`, so parameters move between them.
    """

    features: int
    size: int
    stride: int
    dtype: str = "float32"
    impl: str = conv.AUTO

    @nn.compact
    def __call__(
        self, x_BxHxWxC: jax.Array, train: bool = False, input_grad: bool = True
    ) -> jax.Array:
        """`input_grad=False` tells the choice that no gradient flows into `x` (the data)."""
        shape = (self.size, self.size, x_BxHxWxC.shape[-1], self.features)
        kernel = self.param("kernel", KERAS_KERNEL_INIT, shape)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        compute = jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32
        x, kernel = x_BxHxWxC.astype(compute), kernel.astype(compute)
        members = devices.members_mapped()
        layer = conv.Layer(x.shape, shape, self.stride, self.dtype, train, input_grad, members)
        y = conv.IMPLEMENTATIONS[conv.choose(layer, self.impl)](x, kernel, self.stride)
        return y.astype(jnp.float32) + bias


@MODELS.register("gorner_cnn", check=check_settings)
class GornerCNN(nn.Module):
    """The lab's convolutional network (its file 3.1): 6@6x6 stride 1, 12@5x5 stride 2,
    24@4x4 stride 2, all ReLU and 'same' padding, dense 200 ReLU, dropout, dense 10.
    `conv` names the convolutions' implementation
    (`model.conv=xla|xla_canonical|patches|toeplitz|auto`).
    """

    channels: Sequence[int] = (6, 12, 24)
    dense: int = 200
    dropout_rate: float = 0.0
    num_classes: int = NUM_CLASSES
    dtype: str = "float32"
    conv: str = "auto"

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array, *, train: bool = False) -> jax.Array:
        h = x_BxHxWxC
        for layer, (features, size, stride) in enumerate(
            zip(self.channels, (6, 5, 4), (1, 2, 2), strict=True), start=1
        ):
            h = Conv(features, size, stride, self.dtype, self.conv, name=f"conv_{layer}")(
                h, train, input_grad=layer > 1
            )
            h = nn.relu(h)
        h = h.reshape(h.shape[0], -1)
        h = nn.relu(_dense(self.dense, "dense_1", self.dtype)(h))
        h = Dropout(self.dropout_rate, name="dropout_1")(h, train)
        return _dense(self.num_classes, "dense_2", self.dtype)(h)


def conv_choices(
    model: nn.Module, batch_shape: tuple[int, ...], train: bool, members: int = 1
) -> dict:
    """`{layer name: conv.Choice}` of each convolution in `model` at `batch_shape` (B, H, W, C),
    trained or only run forward, in a program of `members` members: an `auto` layer's choice is
    read or measured now."""
    layers = {}

    def capture(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, Conv) and context.method_name == "__call__":
            x, input_grad = args[0], kwargs.get("input_grad", True)
            kernel = (module.size, module.size, x.shape[-1], module.features)
            layer = conv.Layer(
                x.shape, kernel, module.stride, module.dtype, train, input_grad, members
            )
            layers[module.name] = (layer, module.impl)
        return next_fun(*args, **kwargs)

    x = jax.ShapeDtypeStruct(batch_shape, jnp.float32)
    with conv.shapes_only(), nn.intercept_methods(capture):
        jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    return {name: conv.choice_for(layer, impl) for name, (layer, impl) in layers.items()}


def build(name: str, settings: dict[str, Any], dtype: str = "float32") -> nn.Module:
    """The registered model `name` with `settings` (JSON lists become tuples)."""
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return MODELS.get(name)(**fields, dtype=dtype)


def count_params(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def layer_table(
    model: nn.Module, input_shape: tuple[int, ...]
) -> list[tuple[str, str, tuple, int]]:
    """Rows (name, type, output shape, parameter count) of each submodule, in call order.

    Read off the model itself (abstractly, nothing is computed), so a new model needs no extra
    code to be summarised. `input_shape` is one example's, e.g. (28, 28, 1).
    """
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    kinds = {}

    def capture(module: nn.Module, method: str) -> bool:
        kinds[module.name] = type(module).__name__
        return method == "__call__" and module.name is not None

    def outputs(x):
        return model.init_with_output(
            jax.random.key(0), x, capture_intermediates=capture, mutable=["params", "intermediates"]
        )

    with conv.shapes_only():
        _, variables = jax.eval_shape(outputs, x)
    params, captured = variables["params"], variables["intermediates"]
    return [  # `kinds` holds call order; pytree dicts come back sorted by name
        (name, kind, (None, *out.shape[1:]), count_params(params.get(name, {})))
        for name, kind in kinds.items()
        if name in captured
        for out in captured[name]["__call__"]
    ]


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    """A Keras-style summary: each layer, its output shape and parameters, and the total."""
    rows = layer_table(model, input_shape)
    lines = [f"{'Layer (type)':<32}{'Output Shape':<20}{'Param #':>10}", "=" * 62]
    for name, kind, shape, n_params in rows:
        lines.append(f"{f'{name} ({kind})':<32}{str(shape):<20}{n_params:>10,}")
    lines += ["=" * 62, f"Total params: {sum(r[3] for r in rows):,}"]
    return "\n".join(lines)


@jax.custom_vjp
def _bfloat16_matmul(x_BxI: jax.Array, w_IxO: jax.Array) -> jax.Array:
    return jnp.dot(
        x_BxI.astype(jnp.bfloat16), w_IxO.astype(jnp.bfloat16), preferred_element_type=jnp.float32
    )


def _bfloat16_matmul_fwd(x_BxI, w_IxO):
    return _bfloat16_matmul(x_BxI, w_IxO), (x_BxI, w_IxO.astype(jnp.bfloat16))


def _bfloat16_matmul_bwd(residuals, g_BxO):
    x_BxI, w_IxO = residuals
    g_x = jnp.dot(g_BxO.astype(jnp.bfloat16), w_IxO.T, preferred_element_type=jnp.float32)
    g_w = jnp.dot(x_BxI.T, g_BxO)  # float32: the weight gradient accumulates over the batch
    return g_x.astype(x_BxI.dtype), g_w


_bfloat16_matmul.defvjp(_bfloat16_matmul_fwd, _bfloat16_matmul_bwd)


def bfloat16_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """A Dense layer's product in bfloat16, float32 out; params stay float32.

    The forward and input-gradient products run in bfloat16; the weight gradient stays float32.
    Plain autodiff of a bfloat16 product made XLA upcast the weight-gradient product and gained
    nothing, hence the custom VJP.
    """
    del precision, preferred_element_type
    _check_matmul(lhs, rhs, dimension_numbers)
    return _bfloat16_matmul(lhs, rhs)


@jax.custom_vjp
def _float32_matmul(x_BxI: jax.Array, w_IxO: jax.Array) -> jax.Array:
    return x_BxI @ w_IxO


def _float32_matmul_fwd(x_BxI, w_IxO):
    return x_BxI @ w_IxO, (x_BxI, w_IxO)


def _float32_matmul_bwd(residuals, g_BxO):
    x_BxI, w_IxO = residuals
    return g_BxO @ w_IxO.T, x_BxI.T @ g_BxO


_float32_matmul.defvjp(_float32_matmul_fwd, _float32_matmul_bwd)


def float32_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """A Dense layer's product, its weight gradient written `x^T @ g` (input-major).

    In a sweep whose members share the batch (`train.train_epoch` on a CPU), `x` is the same for
    every member, so that gradient is one product `[I, B] @ [B, M*O]` over all members' kernels;
    autodiff's own form came out `[M*O, I]` and XLA transposed it every step. Reverse mode only,
    as every custom VJP: used where training needs nothing else.
    """
    del precision, preferred_element_type
    _check_matmul(lhs, rhs, dimension_numbers)
    return _float32_matmul(lhs, rhs)


def _check_matmul(lhs, rhs, dimension_numbers) -> None:
    if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())) or rhs.ndim != 2 or lhs.ndim != 2:
        raise ValueError(f"a Dense product here is x_BxI @ W only, got {dimension_numbers}")


DTYPES = ("float32", "bfloat16")
