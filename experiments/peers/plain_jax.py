"""Plain JAX: the textbook baseline the benchmark's ratios are taken against.

A `jax.jit` train step (optax Adam) called from a Python loop, one call per batch; each epoch a
numpy permutation on the host and host-side numpy slicing of every batch, handed to the step as
a numpy array. No Flax, no scan: what a careful JAX user writes first. The step donates the params
and optimizer state (updated in place), as JAX's docs advise; that made it about 12 % faster here.

    python -m experiments.peers.plain_jax --data MNIST.npz --epochs 5
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.peers import BATCH_SIZE, LEARNING_RATE, SIZES, load_npz, parse_args, report

Params = list[tuple[jax.Array, jax.Array]]


def init_params(key: jax.Array) -> Params:
    """Glorot-uniform weights and zero biases, as Keras initialises Dense."""
    glorot = jax.nn.initializers.glorot_uniform()
    keys = jax.random.split(key, len(SIZES) - 1)
    return [
        (glorot(k, (n_in, n_out), jnp.float32), jnp.zeros((n_out,), jnp.float32))
        for k, n_in, n_out in zip(keys, SIZES[:-1], SIZES[1:], strict=True)
    ]


def forward(params: Params, x_BxD: jax.Array) -> jax.Array:
    h = x_BxD
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def loss_fn(params: Params, x_BxD: jax.Array, y_B: jax.Array) -> jax.Array:
    logits_BxC = forward(params, x_BxD)
    return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, y_B).mean()


optimizer = optax.adam(LEARNING_RATE)


@functools.partial(jax.jit, donate_argnums=(0, 1))
def train_step(params: Params, opt_state: optax.OptState, x_BxD: jax.Array, y_B: jax.Array):
    loss, grads = jax.value_and_grad(loss_fn)(params, x_BxD, y_B)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


@jax.jit
def accuracy(params: Params, x_NxD: jax.Array, y_N: jax.Array) -> jax.Array:
    return (forward(params, x_NxD).argmax(-1) == y_N).mean()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    data = load_npz(args.data)
    x_train, y_train = data["x_train"], data["y_train"]
    rng = np.random.default_rng(args.seed)
    params = init_params(jax.random.key(args.seed))
    opt_state = optimizer.init(params)
    steps = len(x_train) // BATCH_SIZE

    epoch_seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        perm = rng.permutation(len(x_train))
        for i in range(steps):
            idx = perm[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            params, opt_state, _ = train_step(params, opt_state, x_train[idx], y_train[idx])
        jax.block_until_ready((params, opt_state))
        epoch_seconds.append(time.perf_counter() - start)

    test_accuracy = accuracy(params, data["x_test"], data["y_test"])
    report("plain_jax", epoch_seconds, test_accuracy)


if __name__ == "__main__":
    main()
