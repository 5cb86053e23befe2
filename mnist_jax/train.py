"""Training and evaluation as pure, jit-compiled functions over an explicit `TrainState`.

A run is a stack of *members* (leading axis M of every state leaf): one member for a plain run,
several for a sweep over learning rates and seeds. `jax.vmap` maps the single-member
`train_step` over them, so a sweep is one compiled program whose members see the same batches.

A whole epoch is one compiled call: the training set lives on the device, each epoch is a
permutation of it, and `lax.scan` walks its batches with no host round-trip. The last partial
batch is dropped: each epoch trains on `N // batch_size` full batches of a fresh permutation, so
every example is seen equally often over epochs (batch 100 divides MNIST's 60,000 exactly).
"""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mnist_jax import conv, losses, metrics, models, optim
from mnist_jax.devices import DATA_AXIS, MEMBERS_AXIS, by_member


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """What is trained and how: the static part of a group of members, fixed at compile time.

    Settings are sorted (key, value) pairs of the non-float settings (lists as tuples), so the
    spec is hashable; the float settings are data, in `TrainState.hparams`.
    """

    model_name: str
    model_settings: tuple[tuple[str, Any], ...] = ()
    optimizer_name: str = "adam"
    optimizer_settings: tuple[tuple[str, Any], ...] = ()
    schedule_name: str = "constant"
    schedule_settings: tuple[tuple[str, Any], ...] = ()
    loss_name: str = "categorical"
    loss_settings: tuple[tuple[str, Any], ...] = ()
    float_keys: tuple[str, ...] = ("lr",)  # the keys of `TrainState.hparams`
    metric_names: tuple[str, ...] = metrics.active(())  # the registered metrics it computes
    batch_size: int = 100
    dtype: str = "float32"
    num_classes: int | None = None  # the dataset's, for a model that takes `num_classes`

    def model(self, hparams: dict[str, jax.Array] | None = None) -> nn.Module:
        """The model, its float settings from `hparams` (traced in a sweep), or zero."""
        floats = {k.partition(".")[2]: v for k, v in self._floats("model", hparams).items()}
        classes = {} if self.num_classes is None else {"num_classes": self.num_classes}
        return models.MODELS.get(self.model_name)(
            **{**dict(self.model_settings), **floats, **classes}, dtype=self.dtype
        )

    def tx(self, hparams: dict[str, jax.Array] | None = None) -> optax.GradientTransformation:
        floats = {k.partition(".")[2]: v for k, v in self._floats("optimizer", hparams).items()}
        return optim.make_optimizer(
            self.optimizer_name, {**dict(self.optimizer_settings), **floats}
        )

    def loss(self, hparams: dict[str, jax.Array] | None = None):
        """`loss(logits_BxK, y_BxK, params)`, its float settings from `hparams`."""
        floats = {k.partition(".")[2]: v for k, v in self._floats("loss", hparams).items()}
        return losses.make_loss(self.loss_name, {**dict(self.loss_settings), **floats})

    def learning_rate(self, step: jax.Array, hparams: dict[str, jax.Array]) -> jax.Array:
        floats = {k.partition(".")[2]: v for k, v in self._floats("schedule", hparams).items()}
        schedule = optim.SCHEDULES.get(self.schedule_name)
        return schedule(step, hparams["lr"], **dict(self.schedule_settings), **floats)

    def _floats(self, kind: str, hparams) -> dict[str, Any]:
        keys = [k for k in self.float_keys if k.startswith(f"{kind}.")]
        return {k: 0.0 if hparams is None else hparams[k] for k in keys}


def hashable(settings: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Non-float settings as sorted pairs, lists as tuples."""
    return tuple(
        (k, tuple(v) if isinstance(v, list) else v)
        for k, v in sorted(settings.items())
        if not isinstance(v, float)
    )


@flax.struct.dataclass
class TrainState:
    params: dict
    opt_state: optax.OptState
    step: jax.Array  # batches taken so far
    hparams: dict  # float hyperparameters by key ("lr", "model.dropout_rate", ...): data, so a
    # sweep over them is one program; optimizer floats also sit in `opt_state.hyperparams`
    key: jax.Array  # the run's key; step keys are folded from it
    diverged: jax.Array  # set once the loss is not finite; the state stops changing then


def init_state(
    spec: TrainSpec, key: jax.Array, hparams: dict[str, jax.Array], input_shape: tuple[int, ...]
) -> TrainState:
    init_key, run_key = jax.random.split(key)
    hparams = {k: jnp.asarray(v, jnp.float32) for k, v in hparams.items()}
    with conv.shapes_only():  # the output is dropped: no convolution needs choosing
        params = spec.model(hparams).init(init_key, jnp.zeros((1, *input_shape)))["params"]
    return TrainState(
        params=params,
        opt_state=spec.tx(hparams).init(params),
        step=jnp.zeros((), jnp.int32),
        hparams=hparams,
        key=run_key,
        diverged=jnp.zeros((), bool),
    )


def member(state_M: TrainState, m: int) -> TrainState:
    """Member `m` of a stacked state."""
    return jax.tree.map(lambda leaf: leaf[m], state_M)


@functools.partial(jax.jit, static_argnames=("spec", "mesh", "input_shape"))
def init_members(
    spec: TrainSpec, mesh: Mesh, seeds_M, hparams_M: dict, input_shape: tuple[int, ...]
) -> TrainState:
    """One state per member, member m from `seeds_M[m]` and `hparams_M[key][m]`, the members
    spread over the mesh's `members` axis."""

    def init(seed, hparams):
        return init_state(spec, jax.random.key(seed), hparams, input_shape)

    state_M = jax.vmap(init)(seeds_M, hparams_M)
    return jax.lax.with_sharding_constraint(state_M, by_member(mesh))


def train_step(spec: TrainSpec, state: TrainState, batch, key) -> tuple[TrainState, dict]:
    """One optimizer step of one member on `batch = (x_BxHxWxC, y_BxK)`; `key` drives dropout."""
    x_BxHxWxC, y_BxK = batch
    model, loss_fn = spec.model(state.hparams), spec.loss(state.hparams)

    def objective(params):
        logits = model.apply({"params": params}, x_BxHxWxC, train=True, rngs={"dropout": key})
        return loss_fn(logits, y_BxK, params), logits

    (loss, logits), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    learning_rate = spec.learning_rate(state.step, state.hparams)
    opt_state = optim.with_learning_rate(state.opt_state, learning_rate)
    updates, opt_state = spec.tx().update(grads, opt_state, state.params)
    stepped = state.replace(
        params=optax.apply_updates(state.params, updates), opt_state=opt_state, step=state.step + 1
    )
    finite = jnp.isfinite(loss)
    keep = finite & ~state.diverged
    observed = metrics.Observed(logits, y_BxK, loss, state.params, grads, learning_rate)
    values = metrics.compute(metrics.at(spec.metric_names, metrics.BATCH), observed)
    state = jax.tree.map(lambda new, old: jnp.where(keep, new, old), stepped, state)
    return state.replace(diverged=state.diverged | ~finite), values


def _member_keys(state_M: TrainState) -> jax.Array:
    return jax.vmap(jax.random.fold_in)(state_M.key, state_M.step)


def shuffled_batches(key: jax.Array, num_examples: int, batch_size: int, num_batches: int):
    """Indices `[num_batches, batch_size]` of a fresh permutation, the remainder dropped.

    One sort of random bits: `jax.random.permutation` sorts twice.
    """
    perm_N = jnp.argsort(jax.random.bits(key, (num_examples,)))
    return perm_N[: num_batches * batch_size].reshape(num_batches, batch_size)


@functools.partial(
    jax.jit, static_argnames=("spec", "mesh", "num_batches"), donate_argnames=("state_M",)
)
def train_epoch(
    spec: TrainSpec, mesh: Mesh, state_M: TrainState, data, key: jax.Array, num_batches: int
) -> tuple[TrainState, dict, dict]:
    """`num_batches` steps of every member over `data = (x_NxHxWxC, y_NxK)`, in the order `key`
    draws. Returns the state, the `BATCH` metrics `[M, num_batches]` (the value of each batch
    alone) and the `EPOCH` metrics `[M]` of the trained parameters.
    """
    x_NxHxWxC, y_NxK = data
    idx_SxB = shuffled_batches(key, x_NxHxWxC.shape[0], spec.batch_size, num_batches)
    members = jax.tree.leaves(state_M)[0].shape[0]

    def batch(idx_B):
        return shard_batch(mesh, (x_NxHxWxC[idx_B], y_NxK[idx_B]))

    if members == 1:  # measured 16 % faster than a vmap over one member

        def body(state, idx_B):
            return train_step(spec, state, batch(idx_B), jax.random.fold_in(state.key, state.step))

        state, metrics_S = jax.lax.scan(body, member(state_M, 0), idx_SxB, unroll=2)
        state_M, metrics_MxS = jax.tree.map(lambda leaf: leaf[None], (state, metrics_S))
        return state_M, metrics_MxS, epoch_metrics(spec, state_M.params)

    if shares_batch(spec, mesh):
        step_shared = jax.vmap(
            functools.partial(train_step, spec), in_axes=(0, None, 0), axis_name=conv.MEMBERS
        )

        def body(state_M, idx_B):
            return step_shared(state_M, batch(idx_B), _member_keys(state_M))

    else:
        step_all = jax.vmap(functools.partial(train_step, spec), axis_name=conv.MEMBERS)

        def body(state_M, idx_B):
            copies = jax.tree.map(lambda a: jnp.broadcast_to(a, (members, *a.shape)), batch(idx_B))
            return step_all(state_M, shard_copies(mesh, copies), _member_keys(state_M))

    state_M, metrics_SxM = jax.lax.scan(body, state_M, idx_SxB, unroll=2)
    metrics_MxS = jax.tree.map(lambda m: m.T, metrics_SxM)
    return state_M, metrics_MxS, epoch_metrics(spec, state_M.params)


def shares_batch(spec: TrainSpec, mesh: Mesh) -> bool:
    """Whether a sweep's members read one batch (`in_axes=None`) rather than a copy each.

    For this package's models on a CPU with one device: a first layer's forward and weight
    gradient are then one product over all members' kernels (its Dense layers write that
    gradient as `models.float32_dot_general` does), an epoch of the lab MLP's 8-member sweep 6 %
    shorter than with copies (`experiments.benchmark_first_layer` times the layer alone).
    Elsewhere each member keeps its own copy, the plain vmapped form: a model of one's own may
    use Flax's Dense, whose weight gradient XLA then transposed every step (17 % slower than
    copies, measured before the custom product); a mesh shards the copies; GPUs and TPUs were
    not measured.
    """
    own = models.MODELS.get(spec.model_name).__module__ == models.__name__
    return own and mesh.size == 1 and jax.default_backend() == "cpu"


def epoch_metrics(spec: TrainSpec, params_M) -> dict[str, jax.Array]:
    """The `EPOCH` metrics of every member's parameters, `[M]` each; none asked, nothing done."""
    names = metrics.at(spec.metric_names, metrics.EPOCH)
    return jax.vmap(lambda params: metrics.compute(names, metrics.Observed(params=params)))(
        params_M
    )


def shard_batch(mesh: Mesh, batch):
    """`batch` split over the mesh's data axis (on one device, left alone: the constraint alone
    cost 4 % of an epoch)."""
    if mesh.size == 1:
        return batch
    return jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, PartitionSpec(DATA_AXIS)))


def shard_copies(mesh: Mesh, copies):
    """The members' copies of a batch `[M, B, ...]`: members over `members`, the batch over
    `data`, so each device reads only its own members' share and no step needs a collective
    between member shards."""
    if mesh.size == 1 or MEMBERS_AXIS not in mesh.axis_names:
        return copies
    sharding = NamedSharding(mesh, PartitionSpec(MEMBERS_AXIS, DATA_AXIS))
    return jax.lax.with_sharding_constraint(copies, sharding)


@functools.partial(jax.jit, static_argnames=("spec", "mesh"))
def evaluate(spec: TrainSpec, mesh: Mesh, params_M, hparams_M, data) -> tuple[dict, dict]:
    """The `TEST` metrics `[M]` and the `END` ones (`[M, ...]`) of every member on the whole of
    `data`, dropout off. The end ones cost a `[K, K]` product: computed with every epoch's
    test metrics rather than compiled apart, and kept only after the last."""
    x_NxHxWxC, y_NxK = shard_batch(mesh, data)

    def values(params, hparams):
        logits = spec.model(hparams).apply({"params": params}, x_NxHxWxC, train=False)
        loss = spec.loss(hparams)(logits, y_NxK, params)
        observed = metrics.Observed(logits, y_NxK, loss, params)
        return tuple(
            metrics.compute(metrics.at(spec.metric_names, where), observed)
            for where in (metrics.TEST, metrics.END)
        )

    return jax.vmap(values, axis_name=conv.MEMBERS)(params_M, hparams_M)
