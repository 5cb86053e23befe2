"""The tutorial's models as Flax Linen modules: `init`/`apply` are pure, params a plain pytree.

Every model maps flattened images `x_BxD` to class logits `logits_BxK`; the softmax lives in the
losses, which work from logits for numerical stability. Dense layers use Keras' defaults
(Glorot-uniform weights, zero biases) so the tutorial's settings carry over. Adding a model is
adding one class here.
"""

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()
NUM_CLASSES = 10
# By the names the functions carry, so a model's activation round-trips through `to_spec`.
ACTIVATIONS = {f.__name__: f for f in (nn.relu, nn.sigmoid, nn.tanh, nn.gelu, nn.elu, nn.silu)}


def _dense(features: int, name: str, dot_general: Callable | None, dtype: Any) -> nn.Dense:
    extra = {} if dot_general is None else {"dot_general": dot_general}
    return nn.Dense(
        features,
        kernel_init=KERAS_KERNEL_INIT,
        bias_init=nn.initializers.zeros,
        dtype=dtype,
        name=name,
        **extra,
    )


class SoftmaxRegression(nn.Module):
    """One dense layer, 784 -> 10: the tutorial's first model (7,850 parameters)."""

    num_classes: int = NUM_CLASSES
    dot_general: Callable | None = None
    dtype: Any = None

    @nn.compact
    def __call__(self, x_BxD: jax.Array, *, train: bool = False) -> jax.Array:
        del train  # nothing differs between training and evaluation
        return _dense(self.num_classes, "dense_1", self.dot_general, self.dtype)(x_BxD)


class MLP(nn.Module):
    """Dense layers `hidden` wide with `activation`, then a dense output layer.

    `dropout_after` lists the hidden layers (1-based) whose activations are followed by dropout at
    `dropout_rate`; the tutorial puts it after layers 2, 3 and 4, the lab after all four.
    The default shape is the lab's five-layer network, 784-200-100-60-30-10 (185,300 parameters).
    """

    hidden: Sequence[int] = (200, 100, 60, 30)
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    dropout_rate: float = 0.0
    dropout_after: Sequence[int] = ()
    num_classes: int = NUM_CLASSES
    dot_general: Callable | None = None
    dtype: Any = None

    @nn.compact
    def __call__(self, x_BxD: jax.Array, *, train: bool = False) -> jax.Array:
        h = x_BxD
        for layer, width in enumerate(self.hidden, start=1):
            h = self.activation(_dense(width, f"dense_{layer}", self.dot_general, self.dtype)(h))
            if layer in self.dropout_after and self.dropout_rate > 0:
                h = nn.Dropout(self.dropout_rate, deterministic=not train, name=f"dropout_{layer}")(
                    h
                )
        out = _dense(
            self.num_classes, f"dense_{len(self.hidden) + 1}", self.dot_general, self.dtype
        )
        return out(h)


def count_params(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def layer_table(model: nn.Module, input_dim: int) -> list[tuple[str, str, tuple, int]]:
    """Rows (name, type, output shape, parameter count) of each submodule, in call order.

    Read off the model itself (abstractly, nothing is computed), so a new model needs no extra
    code to be summarised.
    """
    x = jax.ShapeDtypeStruct((1, input_dim), jnp.float32)
    kinds = {}

    def capture(module: nn.Module, method: str) -> bool:
        kinds[module.name] = type(module).__name__
        return method == "__call__" and module.name is not None

    def outputs(x):
        return model.init_with_output(
            jax.random.key(0), x, capture_intermediates=capture, mutable=["params", "intermediates"]
        )

    _, variables = jax.eval_shape(outputs, x)
    params, captured = variables["params"], variables["intermediates"]
    return [  # `kinds` holds call order; pytree dicts come back sorted by name
        (name, kind, (None, *out.shape[1:]), count_params(params.get(name, {})))
        for name, kind in kinds.items()
        if name in captured
        for out in captured[name]["__call__"]
    ]


def summary(model: nn.Module, input_dim: int) -> str:
    """A Keras-style summary: each layer, its output shape and parameters, and the total."""
    rows = layer_table(model, input_dim)
    lines = [f"{'Layer (type)':<32}{'Output Shape':<20}{'Param #':>10}", "=" * 62]
    for name, kind, shape, n_params in rows:
        lines.append(f"{f'{name} ({kind})':<32}{str(shape):<20}{n_params:>10,}")
    lines += ["=" * 62, f"Total params: {sum(r[3] for r in rows):,}"]
    return "\n".join(lines)


def describe(model: nn.Module) -> str:
    """One line naming the model and its settings, e.g. `MLP(activation=relu, ...)`."""

    def show(value):
        return getattr(value, "__name__", repr(value))

    fields = [
        f"{f.name}={show(getattr(model, f.name))}"
        for f in dataclasses.fields(model)
        if f.name not in ("parent", "name") and getattr(model, f.name) is not None
    ]
    return f"{type(model).__name__}({', '.join(fields)})"


def to_spec(model: nn.Module) -> dict[str, Any]:
    """The model as JSON-ready values, enough for `from_spec` to rebuild it (its matmul
    precision is the run's `dtype`, not part of the spec)."""
    spec = {"class": type(model).__name__}
    for f in dataclasses.fields(model):
        value = getattr(model, f.name)
        if f.name in ("parent", "name", "dot_general", "dtype"):
            continue
        spec[f.name] = value.__name__ if callable(value) else value
    return json.loads(json.dumps(spec))


def from_spec(spec: dict[str, Any]) -> nn.Module:
    """The model `to_spec` described: a class of this module, its fields from `spec`."""
    fields = dict(spec)
    model_class = globals().get(fields.pop("class"))
    if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
        raise ValueError(f"unknown model class {spec['class']!r}")
    if "activation" in fields:
        fields["activation"] = ACTIVATIONS[fields["activation"]]
    return model_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


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
    if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())) or rhs.ndim != 2:
        raise ValueError(f"bfloat16_dot_general handles x @ W only, got {dimension_numbers}")
    return _bfloat16_matmul(lhs, rhs)


DTYPES = ("float32", "bfloat16")


def with_dtype(model: nn.Module, dtype: str) -> nn.Module:
    """`model` computing its matmuls in `dtype`: one of `DTYPES`."""
    if dtype == "float32":
        return model
    if not hasattr(model, "dot_general"):
        raise ValueError(f"{type(model).__name__} has no `dot_general` field for --dtype {dtype}")
    return model.clone(dot_general=bfloat16_dot_general)
