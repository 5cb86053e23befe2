"""Whether a sweep's first layer gains from being one product over all members.

The members of a learning-rate sweep read the same batch, so the lab MLP's first layer
(784 -> 200, 85 % of its arithmetic) could be one matrix product over all M members' kernels
instead of M products. This times one training step of that layer alone (forward product, kernel
gradient, weight update), in a compiled loop, for each way of laying the kernels out:

- `per member`: `[M, 784, 200]`, one product per member on its own copy of the batch (what
  `train.train_epoch` runs: each member's parameters are a plain Flax tree, stacked);
- `shared [784, M*200]`: the batch times every kernel at once, and its kernel gradient
  `x^T g` likewise (kernels kept input-major);
- `shared [M*200, 784]`: every kernel times the batch transposed, kernel gradient `g^T x`
  (kernels kept output-major);
- `shared, kept per member`: what a sweep on a CPU runs (`train.shares_batch`), the kernels kept
  `[M, 784, 200]`, the shared products as above, the kernels transposed each way between them;
- `copies forward, shared gradient`: the forward product per member on copies of the batch, the
  kernel gradient one product, then transposed to `[M, 784, 200]`.

Prints ms per step (median over interleaved rounds) and each layout's ratio to `per member`.
A shared layout pays off only if its ratio is well below 1: the parameters must also be moved
into it and out of it at every epoch's edges, and everything else in a step stays per member.

    python -m experiments.benchmark_first_layer [--members 8] [--steps 50] [--rounds 7]

Measured: see the README's "Sweeps" section (the command above, its machine and load).
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

BATCH, INPUTS, OUTPUTS = 100, 784, 200


def per_member(x_BxI, w_MxIxO):
    x_MxBxI = jnp.broadcast_to(x_BxI, (w_MxIxO.shape[0], *x_BxI.shape))
    y_MxBxO = jnp.einsum("mbi,mio->mbo", x_MxBxI, w_MxIxO)
    return y_MxBxO, jnp.einsum("mbi,mbo->mio", x_MxBxI, y_MxBxO)


def shared_input_major(x_BxI, w_IxMxO):
    y_BxMxO = jnp.einsum("bi,imo->bmo", x_BxI, w_IxMxO)
    return y_BxMxO, jnp.einsum("bi,bmo->imo", x_BxI, y_BxMxO)


def shared_output_major(x_BxI, w_MxOxI):
    y_MxOxB = jnp.einsum("moi,bi->mob", w_MxOxI, x_BxI)
    return y_MxOxB, jnp.einsum("mob,bi->moi", y_MxOxB, x_BxI)


def shared_kept_per_member(x_BxI, w_MxIxO):
    y_BxMxO = jnp.einsum("bi,mio->bmo", x_BxI, w_MxIxO)
    return y_BxMxO, jnp.einsum("bi,bmo->imo", x_BxI, y_BxMxO).transpose(1, 0, 2)


def copies_forward_shared_gradient(x_BxI, w_MxIxO):
    x_MxBxI = jnp.broadcast_to(x_BxI, (w_MxIxO.shape[0], *x_BxI.shape))
    y_MxBxO = jnp.einsum("mbi,mio->mbo", x_MxBxI, w_MxIxO)
    return y_MxBxO, jnp.einsum("bi,mbo->imo", x_BxI, y_MxBxO).transpose(1, 0, 2)


LAYOUTS = {  # name: (one step, the kernels' shape for M members)
    "per member": (per_member, lambda m: (m, INPUTS, OUTPUTS)),
    f"shared [{INPUTS}, M*{OUTPUTS}]": (shared_input_major, lambda m: (INPUTS, m, OUTPUTS)),
    f"shared [M*{OUTPUTS}, {INPUTS}]": (shared_output_major, lambda m: (m, OUTPUTS, INPUTS)),
    "shared, kept per member": (shared_kept_per_member, lambda m: (m, INPUTS, OUTPUTS)),
    "copies fwd, shared grad": (copies_forward_shared_gradient, lambda m: (m, INPUTS, OUTPUTS)),
}


def steps_program(step, steps: int):
    """`steps` training steps of the layer: the output stands in for the loss's gradient."""

    def run(x_BxI, kernels):
        def body(kernels, _):
            _, kernel_grad = step(x_BxI, kernels)
            return kernels - 1e-6 * kernel_grad, None

        return jax.lax.scan(body, kernels, None, length=steps)[0]

    return jax.jit(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50, help="steps per timed call")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if min(args.members, args.steps, args.rounds) < 1:
        parser.error("--members, --steps and --rounds take a positive count")
    key_x, key_w = jax.random.split(jax.random.key(0))
    x_BxI = jax.random.uniform(key_x, (BATCH, INPUTS))
    programs, kernels = {}, {}
    for name, (step, shape) in LAYOUTS.items():
        programs[name] = steps_program(step, args.steps)
        kernels[name] = 0.05 * jax.random.normal(key_w, shape(args.members))
        programs[name](x_BxI, kernels[name]).block_until_ready()  # compile, warm
    ms = {name: [] for name in LAYOUTS}
    for _ in range(args.rounds):
        for name, program in programs.items():
            start = time.perf_counter()
            program(x_BxI, kernels[name]).block_until_ready()
            ms[name].append(1e3 * (time.perf_counter() - start) / args.steps)
    base = statistics.median(ms["per member"])
    print(
        f"first layer {INPUTS}->{OUTPUTS}, batch {BATCH}, {args.members} members: ms per step "
        f"(forward, kernel gradient, update), median of {args.rounds} interleaved rounds"
    )
    for name, values in ms.items():
        median = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(f"  {name:<24} {median:6.2f} ms  ({median / base:.3f} x; rounds {spread})")


if __name__ == "__main__":
    main()
