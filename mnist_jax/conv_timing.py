"""Times ways of computing one convolution layer as the compiled epoch runs it, for `conv`'s
`auto` choice: each candidate on a few training steps in a compiled loop, interleaved rounds,
the median kept."""

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp

from mnist_jax.devices import MEMBERS_AXIS

TIMED_STEPS = 5  # training steps in one timed call
ROUNDS = 3  # timed calls of each candidate, interleaved; the median is kept
FORWARD_EXAMPLES = 1000  # the most examples a forward pass alone is timed on


class Abandoned(Exception):
    """A measurement given up between two of its calls: the thread waiting for it stopped."""


def in_thread(layer, implementations: dict[str, Callable]) -> dict[str, float]:
    """`milliseconds` in a fresh thread (the caller may be tracing a program; the timing runs
    its own), given up at its next call when the caller is interrupted (a stop signal raising
    there): the signal waits for one compiled call, not for the whole measurement."""
    given_up = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        measured = pool.submit(milliseconds, layer, implementations, given_up)
        try:
            return measured.result()
        except BaseException:
            given_up.set()
            raise


def milliseconds(
    layer, implementations: dict[str, Callable], given_up: threading.Event | None = None
) -> dict[str, float]:
    """Each implementation's milliseconds per step of `layer` (a `conv.Layer`): `TIMED_STEPS`
    steps in a compiled loop, `ROUNDS` times interleaved, the median. The forward pass alone
    (evaluation, where the whole test set is one batch) is timed on at most `FORWARD_EXAMPLES`
    examples. Raises `Abandoned` before any call once `given_up` is set."""
    dtype = jnp.bfloat16 if layer.dtype == "bfloat16" else jnp.float32
    keys = jax.random.split(jax.random.key(0), 2)
    batch, *example = layer.input_shape
    batch = batch if layer.train else min(batch, FORWARD_EXAMPLES)
    x = jax.random.uniform(keys[0], (*_members(layer, layer.input_grad), batch, *example), dtype)
    kernel = jax.random.normal(keys[1], (*_members(layer), *layer.kernel_shape), dtype) * 0.1
    programs = {name: _timed_program(impl, layer) for name, impl in implementations.items()}

    def call(program):
        if given_up is not None and given_up.is_set():
            raise Abandoned
        jax.block_until_ready(program(x, kernel))

    for program in programs.values():
        call(program)  # compile and warm
    seconds: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(ROUNDS):
        for name, program in programs.items():
            start = time.perf_counter()
            call(program)
            seconds[name].append(time.perf_counter() - start)
    return {n: 1000 * statistics.median(s) / TIMED_STEPS for n, s in seconds.items()}


def _members(layer, mapped: bool = True) -> tuple[int, ...]:
    """The leading members axis of a timed array, if the layer runs in a sweep and the array is
    per member (a first layer's input, the data, is one batch that the members share)."""
    return (layer.members,) if layer.members > 1 and mapped else ()


def _timed_program(impl, layer):
    """`TIMED_STEPS` steps of the layer in a `lax.scan`, as the compiled epoch runs it: with
    `layer.train`, the forward pass and the gradients, each step moving the input and kernel
    (so no step can be skipped); else the forward pass alone. A sweep's layer is mapped over
    its members as `train.train_epoch` maps it."""
    stride = layer.stride
    argnums = (0, 1) if layer.input_grad else (1,)

    def grads(x, kernel):
        loss = lambda x, k: jnp.sum(jnp.square(impl(x, k, stride).astype(jnp.float32)))  # noqa: E731
        return jax.grad(loss, argnums=argnums)(x, kernel)

    def forward(x, kernel):
        return jnp.mean(impl(x, kernel, stride))

    if layer.members > 1:
        x_axis = 0 if layer.input_grad else None
        grads = jax.vmap(grads, in_axes=(x_axis, 0), axis_name=MEMBERS_AXIS)
        forward = jax.vmap(forward, in_axes=(x_axis, 0), axis_name=MEMBERS_AXIS)

    def step(carry, _):
        x, kernel = carry
        if not layer.train:
            return (x + jnp.mean(forward(x, kernel)).astype(x.dtype), kernel), None
        found = grads(x, kernel)
        g_x = found[0] if layer.input_grad else jnp.zeros_like(x)
        return (x - 1e-6 * g_x, kernel - 1e-6 * found[-1]), None

    return jax.jit(lambda x, kernel: jax.lax.scan(step, (x, kernel), None, length=TIMED_STEPS)[0])
