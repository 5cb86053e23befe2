"""Where `five_layer_relu`'s compiled epoch goes, piece by piece, against its shaped-GEMM floor.

Interleaved round after round in one process, each variant its own compiled program.

    python -m experiments.benchmark_epoch [--data-dir D] [--epochs 3] [--rounds 5]

Variants, each a lone run's median compiled epoch (each run's first, which compiles, dropped):
- `floor`: the epoch's matrix products alone (`experiments.gemm_floor`);
- `hand-written scan`: the textbook peer's step (`experiments.peers.plain_jax`: optax Adam, no
  Flax, no metrics, no guard) scanned over an epoch's batches in one jitted call, the batches
  gathered on the device as the library does: what a careful JAX user's fastest epoch takes;
- `sgd`: the library's epoch (data gather, forward and backward, loss, batch metrics) with plain
  gradient descent's update;
- `adam (standard)`: what `five_layer_relu` trains: the same with the Adam update;
- `adam, guard every step`: the same with the divergence guard's select over the state at every
  step (`steps.guard(True)`), which the loop runs only for an epoch in which a member diverges;
and the 8-member learning-rate sweep as it trains against with the guard at every step. Prints
each figure, its ratio to the floor (to the standard sweep for the sweep) and every round's
figure.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import mnist_jax
from experiments import gemm_floor
from experiments.benchmark_logs import SWEEP_RATES
from experiments.five_layer_relu import CONFIG
from experiments.peers import plain_jax
from mnist_jax import data, steps

VARIANTS = {
    "sgd": ["optimizer=sgd"],
    "adam (standard)": [],
    "adam, guard every step": ["train_step=guard_every_step"],
    "sweep8 (standard)": [f"lr={SWEEP_RATES}"],
    "sweep8, guard every step": [f"lr={SWEEP_RATES}", "train_step=guard_every_step"],
}


@steps.TRAIN_STEPS.register("guard_every_step")
def guard_every_step(spec, state, batch, key):
    """`steps.standard` traced with the divergence guard's select at every step."""
    with steps.guard(True):
        return steps.standard(spec, state, batch, key)


def epoch_seconds(overrides: list[str], epochs: int, data_dir: str | None) -> float:
    """The median compiled epoch after the first."""
    result = mnist_jax.train_and_evaluate(
        CONFIG, [f"epochs={epochs}", *overrides], data_dir=data_dir, logdir=None
    )
    return statistics.median(e.seconds for e in result.runs[0].history[1:])


@jax.jit
def handwritten_epoch(params, opt_state, x_NxD, y_N, key):
    """One epoch of `plain_jax.train_step`'s work, scanned over a fresh permutation's batches."""
    steps = len(y_N) // plain_jax.BATCH_SIZE
    idx_N = jax.random.permutation(key, len(y_N))
    idx_SxB = idx_N[: steps * plain_jax.BATCH_SIZE].reshape(steps, plain_jax.BATCH_SIZE)

    def step(carry, idx_B):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(plain_jax.loss_fn)(params, x_NxD[idx_B], y_N[idx_B])
        updates, opt_state = plain_jax.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return jax.lax.scan(step, (params, opt_state), idx_SxB, unroll=2)


def handwritten_seconds(data_dir: str | None, epochs: int) -> float:
    """The hand-written scan's median epoch after the first (which compiles)."""
    images, labels = data.load_mnist("train", data_dir)
    x_NxD = jnp.asarray(data.flatten(data.to_inputs(images)))
    y_N = jnp.asarray(labels.astype("int32"))
    params = plain_jax.init_params(jax.random.key(0))
    opt_state = plain_jax.optimizer.init(params)
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        (params, opt_state), losses = handwritten_epoch(
            params, opt_state, x_NxD, y_N, jax.random.key(epoch)
        )
        jax.block_until_ready(losses)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--epochs", type=int, default=3, help="per run, the first dropped")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs takes at least 2 (the first, which compiles, is dropped)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    seconds = {name: [] for name in ("floor", "hand-written scan", *VARIANTS)}
    for i in range(args.rounds):
        order = list(VARIANTS.items())
        for name, overrides in order if i % 2 == 0 else order[::-1]:
            seconds[name].append(epoch_seconds(overrides, args.epochs, args.data_dir))
        seconds["floor"].append(gemm_floor.seconds_per_epoch(reps=3))
        seconds["hand-written scan"].append(handwritten_seconds(args.data_dir, args.epochs))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"five_layer_relu's compiled epoch, medians of {args.rounds} interleaved rounds:")
    for name, values in seconds.items():
        against = "sweep8 (standard)" if name.startswith("sweep8") else "floor"
        print(
            f"  {name:<24} {median[name]:.3f} s  {median[name] / median[against]:.3f} x "
            f"{against}; rounds {[round(v, 3) for v in values]}"
        )


if __name__ == "__main__":
    main()
