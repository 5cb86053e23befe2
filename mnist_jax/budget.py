"""How much host memory a sweep needs: checked before its grid is built, so a sweep that could
never finish is refused in seconds, with the estimate, rather than after minutes of building or
in a `MemoryError`.

A trained member is handed back whole (its parameters, its per-batch losses, its records), so
what the members keep grows with their number however they are chunked. The chunk training at
the moment adds, per member, a few parameter-sized arrays (optimizer moments, gradients,
updates) and, the larger part, its activations on the whole test set, which is evaluated for
every member at once.

Measured peak resident memory of five_layer_relu (185,300 parameters, 400 activations an
example), real MNIST, `--steps 10 --no-logs` (`/usr/bin/time -f %M`): 1 member 0.88 GB, 256
members 5.40 GB, 1,024 members 5.88 GB; `estimate` gives 1.02, 5.88 and 6.42 GB.
"""

import dataclasses
import math
import os

CHUNK = 256  # members trained at once by default (`--max-members`)
BASE_BYTES = 2**30  # the process itself: JAX, its programs, both MNIST splits (0.89 GB measured)
RECORD_BYTES = 16 * 2**10  # a member's config, run record, epoch history and JSON, above its arrays
CHUNK_COPIES = 5  # parameter-sized float32 arrays per member while its chunk trains
EVAL_EXAMPLES = 10_000  # MNIST's test split, evaluated for a whole chunk at once
TRAIN_EXAMPLES = 60_000  # MNIST's training split, for the steps of an `epochs` run


@dataclasses.dataclass(frozen=True)
class Group:
    """What sets the memory of a group of members that share one model shape."""

    members: int
    params: int  # parameters of one member
    activations: int  # floats the model computes for one example
    steps: int  # training steps of one member


def host_memory() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def steps_of(epochs: int | None, steps: int | None, batch_size: int) -> int:
    return steps if steps is not None else (epochs or 0) * (TRAIN_EXAMPLES // batch_size)


def kept_bytes(g: Group) -> int:
    """What one trained member keeps until the run ends: parameters, a loss a step, records."""
    return 4 * g.params + 4 * g.steps + RECORD_BYTES


def training_bytes(g: Group) -> int:
    """What one member of a training chunk holds besides what it keeps: parameter-sized arrays
    and its activations on the test set."""
    return 4 * (CHUNK_COPIES * g.params + EVAL_EXAMPLES * g.activations)


def estimate(groups: list[Group], chunk: int) -> int:
    """Peak host bytes of training `groups`, at most `chunk` members at a time."""
    kept = sum(g.members * kept_bytes(g) for g in groups)
    training = max(min(g.members, chunk) * training_bytes(g) for g in groups)
    return BASE_BYTES + kept + training


def problem(groups: list[Group], chunk: int) -> str | None:
    """Why the sweep of `groups` cannot train on this machine, or None when it fits: too many
    members to keep, or too many trained at once (which a smaller chunk mends)."""
    needed, have = estimate(groups, chunk), host_memory()
    if needed <= have:
        return None
    members = sum(g.members for g in groups)
    kept = sum(g.members * kept_bytes(g) for g in groups)
    head = f"a sweep of {members:,} members needs about {_gb(needed)} of host memory"
    each = max(kept_bytes(g) for g in groups)
    if BASE_BYTES + kept + max(training_bytes(g) for g in groups) > have:
        training = max(min(g.members, chunk) * training_bytes(g) for g in groups)
        at_most = (have - BASE_BYTES - training) // each
        if at_most < 1:
            return f"{head}, more than this machine's {_gb(have)} even for one member"
        return (
            f"{head} ({_mb(each)} kept per member however it is chunked), more than this "
            f"machine's {_gb(have)}: sweep at most about {at_most:,} members a run"
        )
    fits = (have - BASE_BYTES - kept) // max(training_bytes(g) for g in groups)
    return (
        f"{head} while {chunk} members train at once, more than this machine's {_gb(have)}: "
        f"give --max-members {fits} or fewer"
    )


def values_problem(count: int) -> str | None:
    """Why `count` values of one key are too many before anything else is known: each makes at
    least one member, which keeps at least its record."""
    needed = BASE_BYTES + count * RECORD_BYTES
    if needed <= host_memory():
        return None
    return (
        f"{count:,} values make at least {count:,} members, which need over {_gb(needed)} of "
        f"host memory before any parameter (this machine has {_gb(host_memory())}); sweep fewer "
        "values"
    )


def chunks_line(groups: list[Group], chunk: int) -> str:
    """What a sweep larger than one chunk will do, said before it starts."""
    members = sum(g.members for g in groups)
    count = sum(math.ceil(g.members / chunk) for g in groups)
    return (
        f"{members:,} members train in {count:,} chunks of up to {chunk}, one after another: "
        f"about {_gb(estimate(groups, chunk))} of host memory at the end (this machine has "
        f"{_gb(host_memory())})"
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f} MB"
