"""The shaped-GEMM floor of one `five_layer_relu` epoch: only its matrix products, at their
batch-100 shapes, in one jitted JAX function on JAX's default device.

Per step: 5 forward `X @ W`, 5 weight gradients `X^T @ dY` and 4 input gradients `dY @ W^T`
(the input layer needs none); 600 steps. Each product depends on the loop's carry, so XLA can
neither hoist nor drop it. No epoch that trains the model can take less; the benchmark sets the
compiled epoch against it. The same measurement as `peak_flops.py --no-torch`'s
`shaped_jax_seconds_per_epoch` (the reference peers' machine figure).

    python -m experiments.gemm_floor [--reps 5]

Prints one JSON line: `seconds_per_epoch` (the best of the repetitions, after a warm-up) and the
device.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

LAYERS = (784, 200, 100, 60, 30, 10)
BATCH, STEPS = 100, 600


def products(weights, inputs, grads_out):
    """One epoch's products: `STEPS` steps of every layer's three GEMMs."""

    def body(_, carry):
        for x_BxI, w_IxO, dy_BxO in zip(inputs, weights, grads_out, strict=True):
            x_BxI = x_BxI + carry  # each product depends on the carry: nothing is hoisted
            carry = carry + (x_BxI @ w_IxO).sum() * 1e-30 + (x_BxI.T @ dy_BxO).sum() * 1e-30
        for w_IxO, dy_BxO in zip(weights[1:], grads_out[1:], strict=True):
            carry = carry + ((dy_BxO + carry) @ w_IxO.T).sum() * 1e-30
        return carry

    return jax.lax.fori_loop(0, STEPS, body, jnp.float32(0))


def seconds_per_epoch(reps: int) -> float:
    rng = np.random.default_rng(0)
    pairs = list(zip(LAYERS[:-1], LAYERS[1:], strict=True))
    weights = [jnp.asarray(rng.standard_normal((i, o), np.float32) * 0.05) for i, o in pairs]
    inputs = [jnp.asarray(rng.standard_normal((BATCH, i), np.float32)) for i, _ in pairs]
    grads_out = [jnp.asarray(rng.standard_normal((BATCH, o), np.float32)) for _, o in pairs]
    epoch = jax.jit(products)
    epoch(weights, inputs, grads_out).block_until_ready()  # compiles and warms up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        epoch(weights, inputs, grads_out).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed epochs; the best is kept")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    seconds = seconds_per_epoch(args.reps)
    device = jax.devices()[0]
    print(json.dumps({"seconds_per_epoch": round(seconds, 4), "device": device.device_kind}))


if __name__ == "__main__":
    main()
