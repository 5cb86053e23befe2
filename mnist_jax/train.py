"""Training and evaluation as pure, jit-compiled functions over an explicit `TrainState`.

A run is a stack of *members* (leading axis M of every state leaf): one member for a plain run,
several for a sweep over learning rates and seeds. `jax.vmap` maps the single-member
`train_step` over them, so a sweep is one compiled program whose members see the same batches.

A whole epoch is one compiled call: the training set lives on the device, each epoch is a
permutation of it, and `lax.scan` walks its batches with no host round-trip. The last partial
batch is dropped: each epoch trains on `N // batch_size` full batches of a fresh permutation, so
every example is seen equally often over epochs (batch 100 divides MNIST's 60,000 exactly).
"""

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mnist_jax import conv, devices, metrics, models, steps
from mnist_jax.devices import DATA_AXIS, MEMBERS_AXIS, by_member
from mnist_jax.spec import TrainSpec


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


def step_of(spec: TrainSpec):
    """`step(state, batch, key)` of one member: the run's registered step, the batch's inputs
    augmented first with a draw of the member's own (its key comes from the step's)."""

    def step(state: TrainState, batch, key) -> tuple[TrainState, dict]:
        x_BxHxWxC, y_BxK = batch
        augment = spec.augment(state.hparams)
        x_BxHxWxC = augment(jax.random.fold_in(key, AUGMENT_STREAM), x_BxHxWxC)
        return spec.train_step(state.hparams)(spec, state, (x_BxHxWxC, y_BxK), key)

    return step


AUGMENT_STREAM = 1  # the augmentation's key, folded from the step's: dropout keeps the step's


def _member_keys(state_M: TrainState) -> jax.Array:
    return jax.vmap(jax.random.fold_in)(state_M.key, state_M.step)


def shuffled_batches(key: jax.Array, num_examples: int, batch_size: int, num_batches: int):
    """Indices `[num_batches, batch_size]` of a fresh permutation, the remainder dropped.

    One sort of random bits: `jax.random.permutation` sorts twice.
    """
    perm_N = jnp.argsort(jax.random.bits(key, (num_examples,)))
    return perm_N[: num_batches * batch_size].reshape(num_batches, batch_size)


def epoch(
    spec: TrainSpec, mesh: Mesh, state_M: TrainState, data, key: jax.Array, num_batches: int
) -> tuple[TrainState, dict, dict]:
    """`train_epoch` as the epoch loop runs it. While every member is finite an epoch trains
    without the divergence guard's select; an epoch in which a member turns non-finite trains
    again from its start with the guard (that member keeps its last finite state, the others
    train on), and so does every epoch after it."""
    if not np.any(devices.to_host(state_M.diverged)):
        start_M = jax.tree.map(lambda leaf: leaf.copy(), state_M)  # the epoch donates its input
        trained = train_epoch(spec, mesh, state_M, data, key, num_batches, guarded=False)
        if not np.any(devices.to_host(trained[0].diverged)):
            return trained
        state_M = start_M
    return train_epoch(spec, mesh, state_M, data, key, num_batches)


@functools.partial(
    jax.jit,
    static_argnames=("spec", "mesh", "num_batches", "guarded"),
    donate_argnames=("state_M",),
)
def train_epoch(
    spec: TrainSpec,
    mesh: Mesh,
    state_M: TrainState,
    data,
    key: jax.Array,
    num_batches: int,
    guarded: bool = True,
) -> tuple[TrainState, dict, dict]:
    """`num_batches` steps of every member over `data = (x_NxHxWxC, y_NxK)`, in the order `key`
    draws, the steps traced with the divergence guard on or off (`steps.guard`). Returns the
    state, the `BATCH` metrics `[M, num_batches]` (the value of each batch alone) and the
    `EPOCH` metrics `[M]` of the trained parameters.
    """
    with steps.guard(guarded):
        return _train_epoch(spec, mesh, state_M, data, key, num_batches)


def _train_epoch(spec: TrainSpec, mesh: Mesh, state_M: TrainState, data, key, num_batches: int):
    x_NxHxWxC, y_NxK = data
    idx_SxB = shuffled_batches(key, x_NxHxWxC.shape[0], spec.batch_size, num_batches)
    members = jax.tree.leaves(state_M)[0].shape[0]

    def batch(idx_B):
        return shard_batch(mesh, (x_NxHxWxC[idx_B], y_NxK[idx_B]))

    step = step_of(spec)
    if members == 1:  # a lone member is not mapped: no vmap over one

        def body(state, idx_B):
            return step(state, batch(idx_B), jax.random.fold_in(state.key, state.step))

        state, metrics_S = jax.lax.scan(body, member(state_M, 0), idx_SxB, unroll=2)
        state_M, metrics_MxS = jax.tree.map(lambda leaf: leaf[None], (state, metrics_S))
        return state_M, metrics_MxS, epoch_metrics(spec, state_M.params)

    if shares_batch(spec, mesh):
        step_shared = jax.vmap(step, in_axes=(0, None, 0), axis_name=MEMBERS_AXIS)

        def body(state_M, idx_B):
            return step_shared(state_M, batch(idx_B), _member_keys(state_M))

    else:
        step_all = jax.vmap(step, axis_name=MEMBERS_AXIS)

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
    gradient as `models.float32_dot_general` does; `experiments.benchmark_first_layer` times
    the forms). Elsewhere each member keeps its own copy, the plain vmapped form: a model of
    one's own may use Flax's Dense, whose weight gradient XLA transposes every step when the
    batch is shared; a mesh shards the copies.
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
    """`batch` split over the mesh's data axis (on one device, left alone: the constraint
    costs time and places nothing)."""
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


@functools.partial(jax.jit, static_argnames=("spec", "mesh", "conv_members"))
def evaluate(
    spec: TrainSpec, mesh: Mesh, params_M, hparams_M, data, conv_members: int = 1
) -> tuple[dict, dict]:
    """The `TEST` metrics `[M]` and the `END` ones (`[M, ...]`) of every member on the whole of
    `data`, dropout off. The end ones cost a `[K, K]` product: computed with every epoch's
    test metrics rather than compiled apart, and kept only after the last. A lone member after
    its sweep of `conv_members` takes the sweep's convolutions (`conv.lone_as`)."""
    x_NxHxWxC, y_NxK = shard_batch(mesh, data)

    def values(params, hparams):
        logits, seen = steps.forward(spec, spec.model(hparams), params, x_NxHxWxC)
        loss = spec.loss(hparams)(logits, y_NxK, params)
        observed = metrics.Observed(
            logits, y_NxK, loss, params, x_BxHxWxC=x_NxHxWxC, activations=seen
        )
        return tuple(
            metrics.compute(metrics.at(spec.metric_names, where), observed)
            for where in (metrics.TEST, metrics.END)
        )

    with conv.lone_as(conv_members):
        return jax.vmap(values, axis_name=MEMBERS_AXIS)(params_M, hparams_M)
