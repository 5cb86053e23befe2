"""A 'same'-padded 2-D convolution, its implementation chosen by measurement on the host.

Which way of computing a small convolution is fastest depends on the CPU and on where it runs:
inside the compiled epoch's loop, XLA:CPU (jax 0.10) runs the gradient convolutions that
autodiff writes (kernel layouts other than HWIO) through a slow generic loop, 10-30 x slower
than the same convolutions outside a loop, while those written as NHWC x HWIO convolutions take
its fast kernel. The implementations, all reading the same HWIO `kernel`, so parameters move
between them:

- `xla`: `lax.conv_general_dilated`, gradients by autodiff (always used on GPU and TPU);
- `xla_canonical`: the same forward convolution, its input and kernel gradients written as
  NHWC x HWIO convolutions (a custom VJP; the input's over the stride phases, no zeros);
- `patches`: each output position's receptive field sliced out (im2col), times the kernel as a
  matrix;
- `toeplitz`: each block of output columns as the input rows it reads times a banded matrix
  of the kernel.

`model.conv=auto` (the default) picks, on a CPU, the fastest for each layer's shapes, dtype and
host (CPU model, cores, backend, jax version, XLA_FLAGS): the first time such a layer is
compiled, each candidate is timed on a few training steps in a compiled loop (forward, input and
kernel gradients; the forward alone for evaluation), and the choice is written to
`conv_choices.json` in JAX's compilation cache folder (`compile_cache.cache_dir()`), so later
runs pay nothing. Delete that file to measure again. With the cache off, each process measures.
A sweep's layer, mapped over its members (`devices.members_mapped`), is its own layer: timed
mapped over that many members and recorded apart, since the fastest lone layer can be the
slowest mapped one (`xla_canonical`'s convolutions become grouped ones). A search's chosen
member, evaluated alone at the end, takes its sweep's choices (`lone_as`): nothing is measured
then.
"""

import contextlib
import dataclasses
import functools
import json
import os
import platform
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mnist_jax import compile_cache, conv_timing

NHWC_HWIO = ("NHWC", "HWIO", "NHWC")
AUTO = "auto"
CHOICES_FILE = "conv_choices.json"
REVISION = 2  # of the implementations; 2: `xla_canonical`'s input gradient by stride phases


def same_padding(size_in: int, size: int, stride: int) -> tuple[int, tuple[int, int]]:
    """Output length and (low, high) padding of a 'same' window, as XLA pads it."""
    size_out = -(-size_in // stride)
    total = max((size_out - 1) * stride + size - size_in, 0)
    return size_out, (total // 2, total - total // 2)


def xla(x_BxHxWxC: jax.Array, kernel_HWIO: jax.Array, stride: int) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x_BxHxWxC, kernel_HWIO, (stride, stride), "SAME", dimension_numbers=NHWC_HWIO
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def xla_canonical(x_BxHxWxC: jax.Array, kernel_HWIO: jax.Array, stride: int) -> jax.Array:
    return xla(x_BxHxWxC, kernel_HWIO, stride)


def _canonical_fwd(x_BxHxWxC, kernel_HWIO, stride):
    return xla(x_BxHxWxC, kernel_HWIO, stride), (x_BxHxWxC, kernel_HWIO)


def _canonical_bwd(stride, residuals, g_BxPxQxF):
    """Both gradients as NHWC x HWIO convolutions: the input's by stride phases (see
    `_input_grad`); the kernel's correlates the input, batch as features, with `g` dilated by
    the stride."""
    x_BxHxWxC, kernel_HWIO = residuals
    size = kernel_HWIO.shape[0]
    _, height, width, _ = x_BxHxWxC.shape
    (out_h, (lo_h, _)), (out_w, (lo_w, _)) = (
        same_padding(height, size, stride),
        same_padding(width, size, stride),
    )
    g_kernel_CxHxWxF = jax.lax.conv_general_dilated(
        x_BxHxWxC.transpose(3, 1, 2, 0),
        g_BxPxQxF.transpose(1, 2, 0, 3),
        (1, 1),
        (
            (lo_h, (out_h - 1) * stride + size - height - lo_h),
            (lo_w, (out_w - 1) * stride + size - width - lo_w),
        ),
        rhs_dilation=(stride, stride),
        dimension_numbers=NHWC_HWIO,
    )
    g_x = _input_grad(g_BxPxQxF, kernel_HWIO, x_BxHxWxC.shape, stride)
    return g_x, g_kernel_CxHxWxF.transpose(1, 2, 0, 3)


def _input_grad(g_BxPxQxF, kernel_HWIO, x_shape, stride):
    """The transposed convolution as one stride-1 convolution over the stride x stride phases.

    Padded input row `stride * u + a` takes `g` rows `u - e` through kernel rows
    `stride * e + a`: so each phase (a, b) is a stride-1 correlation of `g` with the taps that
    reach it, all phases are the output features of one convolution, and depth-to-space
    interleaves them. Dilating `g` by the stride instead (as autodiff does) multiplies zeros:
    for the lab's conv_2 that took 4.8 ms a step against 2.1 ms this way (jax 0.10.2, 2 cores).
    """
    batch, height, width, channels = x_shape
    size, _, _, features = kernel_HWIO.shape
    _, out_h, out_w, _ = g_BxPxQxF.shape
    taps = -(-size // stride)  # kernel taps per phase and axis
    _, (lo_h, _) = same_padding(height, size, stride)
    _, (lo_w, _) = same_padding(width, size, stride)
    reach = stride * taps - size
    kernel = jnp.pad(kernel_HWIO, ((0, reach), (0, reach), (0, 0), (0, 0)))
    # [e_h, a, e_w, b, C, F] -> HWIO [taps, taps, F, (a, b, C)], taps reversed: a correlation.
    kernel = kernel.reshape(taps, stride, taps, stride, channels, features)[::-1, :, ::-1]
    phases_HWIO = kernel.transpose(0, 2, 5, 1, 3, 4).reshape(
        taps, taps, features, stride * stride * channels
    )
    edge = taps - 1
    g_padded = jnp.pad(g_BxPxQxF, ((0, 0), (edge, edge), (edge, edge), (0, 0)))
    phases = jax.lax.conv_general_dilated(
        g_padded, phases_HWIO, (1, 1), "VALID", dimension_numbers=NHWC_HWIO
    )  # [B, U, V, (a, b, C)], U = out_h + taps - 1
    rows, cols = out_h + edge, out_w + edge
    padded_x = (
        phases.reshape(batch, rows, cols, stride, stride, channels)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(batch, stride * rows, stride * cols, channels)
    )
    return padded_x[:, lo_h : lo_h + height, lo_w : lo_w + width, :]


xla_canonical.defvjp(_canonical_fwd, _canonical_bwd)


def patches(x_BxHxWxC: jax.Array, kernel_HWIO: jax.Array, stride: int) -> jax.Array:
    """im2col: `[B, H', W', size * size * C]` receptive fields, ordered (row, column, channel)
    like an HWIO kernel, times the kernel as a `[size * size * C, F]` matrix."""
    size, _, _, features = kernel_HWIO.shape
    _, height, width, _ = x_BxHxWxC.shape
    out_h, pad_h = same_padding(height, size, stride)
    out_w, pad_w = same_padding(width, size, stride)
    padded = jnp.pad(x_BxHxWxC, ((0, 0), pad_h, pad_w, (0, 0)))
    fields = jnp.concatenate(
        [
            padded[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :]
            for i in range(size)
            for j in range(size)
        ],
        axis=-1,
    )
    return fields @ kernel_HWIO.reshape(-1, features)


def toeplitz(x_BxHxWxC: jax.Array, kernel_HWIO: jax.Array, stride: int) -> jax.Array:
    """Each output row, in blocks of `block` columns, as one product: the `size` padded input
    rows a block reads over its `(block - 1) * stride + size` columns, `[B * H' * blocks,
    size * reads * C]`, times a banded (Toeplitz) matrix `[size * reads * C, block * F]` built
    from the kernel, the same for every block. It costs `reads / size` times the arithmetic of
    `patches` but copies the input far fewer times, in large products: for a layer with few
    input channels (the lab's first) that is the faster trade."""
    size, _, channels, features = kernel_HWIO.shape
    batch, height, width, _ = x_BxHxWxC.shape
    out_h, pad_h = same_padding(height, size, stride)
    out_w, pad_w = same_padding(width, size, stride)
    block = block_width(out_w, size)
    reads = (block - 1) * stride + size
    padded = jnp.pad(x_BxHxWxC, ((0, 0), pad_h, pad_w, (0, 0)))
    starts = range(0, out_w * stride, block * stride)
    rows = jnp.stack(
        [
            jnp.stack(
                [padded[:, i : i + stride * out_h : stride, c : c + reads] for i in range(size)], 2
            )
            for c in starts
        ],
        axis=2,
    )  # [B, H', blocks, size, reads, C]
    taps_JxRxQ = np.zeros((size, reads, block), np.float32)  # column j reaches r = s q + j
    for j in range(size):
        taps_JxRxQ[j, stride * np.arange(block) + j, np.arange(block)] = 1
    banded = jnp.einsum("ijcf,jrq->ircqf", kernel_HWIO, taps_JxRxQ.astype(kernel_HWIO.dtype))
    product = rows.reshape(-1, size * reads * channels) @ banded.reshape(-1, block * features)
    return product.reshape(batch, out_h, out_w, features)


def block_width(out_w: int, size: int) -> int:
    """The divisor of `out_w` nearest the kernel's size (the larger on a tie): for the lab's
    first layer 7 columns, 1.5 ms a training step against 1.7 for 4, 1.8 for 14 and 3.9 for the
    whole row of 28 (jax 0.10.2, 2 cores)."""
    divisors = [d for d in range(1, out_w + 1) if out_w % d == 0]
    return min(divisors, key=lambda d: (abs(d - size), -d))


IMPLEMENTATIONS = {
    "xla": xla,
    "xla_canonical": xla_canonical,
    "patches": patches,
    "toeplitz": toeplitz,
}
CHOICES = (AUTO, *IMPLEMENTATIONS)


@dataclasses.dataclass(frozen=True)
class Layer:
    """What a choice depends on besides the host: the shapes, the dtype, whether the layer is
    differentiated (training) or only run forward (evaluation), and whether its input's
    gradient is wanted (not for a first layer, whose input is the data)."""

    input_shape: tuple[int, ...]  # B, H, W, C
    kernel_shape: tuple[int, ...]  # size, size, C, F
    stride: int
    dtype: str
    train: bool
    input_grad: bool = True
    members: int = 1  # a sweep's members mapped over (`jax.vmap`), each with its own kernel

    def key(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        kernel = "x".join(map(str, self.kernel_shape))
        mode = "forward" if not self.train else "train" if self.input_grad else "train-kernel"
        members = f" {self.members} members" if self.members > 1 else ""
        return f"{shape} * {kernel} stride {self.stride} {self.dtype} {mode}{members}"


@dataclasses.dataclass(frozen=True)
class Choice:
    """The implementation a layer uses, and why: `forced` (model.conv), `backend` (not a CPU),
    `recorded` (an earlier measurement on this host) or `measured` (now); `ms` the measured
    milliseconds per step of each candidate."""

    layer: str
    impl: str
    source: str
    ms: dict[str, float] = dataclasses.field(default_factory=dict)


_lock = threading.Lock()
_chosen: dict[str, Choice] = {}  # this process's choices, by host and layer key
_tracing = threading.local()  # what the trace under way asks of `auto` (these contexts nest)


def shapes_only():
    """While tracing only for shapes (initialisation, summaries), `auto` measures nothing: every
    implementation gives the same shapes and parameters."""
    return _tracing_with("shapes_only", True)


def lone_as(members: int):
    """While tracing one member's program after its sweep's (a search's choice on the test set),
    `auto` takes the sweep's choice (`members` mapped over): nothing is measured at the end."""
    return _tracing_with("lone_as", members)


@contextlib.contextmanager
def _tracing_with(name: str, value):
    before = getattr(_tracing, name, None)
    setattr(_tracing, name, value)
    try:
        yield
    finally:
        setattr(_tracing, name, before)


def host() -> str:
    """What makes a measurement valid elsewhere: CPU model, usable cores, backend, jax version
    and XLA flags."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags = os.environ.get("XLA_FLAGS", "")
    return (
        f"{cpu_model()} | {cores} cores | {jax.default_backend()} | jax {jax.__version__}"
        f" | XLA_FLAGS={flags}"
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def choose(layer: Layer, requested: str) -> str:
    """The implementation for `layer`: `requested` unless it is `auto` (see `choice_for`)."""
    if requested == AUTO and getattr(_tracing, "shapes_only", None):
        return "xla"
    if layer.members == 1 and (members := getattr(_tracing, "lone_as", None)):
        layer = dataclasses.replace(layer, members=members)
    return choice_for(layer, requested).impl


def choice_for(layer: Layer, requested: str) -> Choice:
    """`requested` unless it is `auto`; then XLA's convolution off a CPU, else the fastest on
    this host, measured at most once per host (see the module docstring)."""
    if requested != AUTO:
        return Choice(layer.key(), requested, "forced")
    if jax.default_backend() != "cpu":
        return Choice(layer.key(), "xla", "backend")
    key = record_key(layer)
    with _lock:
        if key not in _chosen:
            recorded = _read_choices().get(key)
            if _complete(recorded, layer):
                found = Choice(layer.key(), recorded["impl"], "recorded", recorded.get("ms", {}))
            else:
                found = _measure(layer)
                _record(key, found)
            _chosen[key] = _agreed(found)
        return _chosen[key]


def record_key(layer: Layer) -> str:
    """Where `layer`'s choice is recorded: the host, the implementations' revision (raised when
    one changes, so that earlier records are measured again) and the layer."""
    return f"{host()} | implementations {REVISION} | {layer.key()}"


def candidates(layer: Layer) -> list[str]:
    """What `auto` times for `layer`: every implementation, but `xla_canonical` only where
    gradients are taken (its forward pass is `xla`'s)."""
    return [name for name in IMPLEMENTATIONS if layer.train or name != "xla_canonical"]


def _complete(recorded: dict | None, layer: Layer) -> bool:
    """Whether a recorded choice was made among today's candidates (not before one was added)."""
    return (
        isinstance(recorded, dict)
        and recorded.get("impl") in IMPLEMENTATIONS
        and isinstance(recorded.get("ms"), dict)
        and set(recorded["ms"]) == set(candidates(layer))
    )


def chosen() -> list[Choice]:
    """Every `auto` choice this process has made or read, in the order first asked."""
    with _lock:
        return list(_chosen.values())


def _agreed(found: Choice) -> Choice:
    """With several processes, process 0's choice everywhere: they must compile one program."""
    if jax.process_count() == 1:
        return found
    from jax.experimental import multihost_utils

    names = list(IMPLEMENTATIONS)
    with ThreadPoolExecutor(max_workers=1) as pool:
        index = pool.submit(
            multihost_utils.broadcast_one_to_all, jnp.int32(names.index(found.impl))
        ).result()
    impl = names[int(index)]
    return found if impl == found.impl else Choice(found.layer, impl, "process 0", found.ms)


def _measure(layer: Layer) -> Choice:
    """The fastest of the layer's candidates on this host (`conv_timing`); `xla_canonical` is
    left out of a forward pass alone, which is `xla`'s."""
    ms = conv_timing.in_thread(layer, {n: IMPLEMENTATIONS[n] for n in candidates(layer)})
    rounded = {name: round(value, 3) for name, value in ms.items()}
    # Chosen by the figures recorded, so that the record explains the choice (ties: the first).
    return Choice(layer.key(), min(rounded, key=rounded.get), "measured", rounded)


def _choices_path() -> Path | None:
    folder = compile_cache.cache_dir()
    return None if folder is None else folder / CHOICES_FILE


def _read_choices() -> dict:
    path = _choices_path()
    if path is None:
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # none recorded yet, or a damaged file: measured again and rewritten


def _record(key: str, found: Choice) -> None:
    """Adds the measurement to the file atomically (read, merge, replace); a folder that cannot
    be written costs one note, never the run."""
    path = _choices_path()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        choices = _read_choices() | {key: {"impl": found.impl, "ms": found.ms}}
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(choices, f, indent=1, sort_keys=True)
        os.replace(f.name, path)
    except OSError as exc:
        print(f"note: convolution choice not recorded in {path}: {exc}", file=sys.stderr)
