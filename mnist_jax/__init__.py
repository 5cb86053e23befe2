"""mnist_jax: deep-learning basics on MNIST in pure-functional JAX and Flax."""

import resource
import sys
import time

IMPORT_TIME = time.perf_counter()  # start of a run's start-up, reported as `startup_seconds`


def __getattr__(name: str):
    """`mnist_jax.train_and_evaluate` and `mnist_jax.load` (a checkpoint's trained members),
    imported on first use: `import mnist_jax` stays free of JAX, so the start-up clock above
    starts before the heavy imports."""
    if name == "train_and_evaluate":
        from mnist_jax.experiment import train_and_evaluate

        return train_and_evaluate
    if name == "load":
        from mnist_jax.trained import load

        return load
    raise AttributeError(f"module 'mnist_jax' has no attribute {name!r}")


def _out_of_memory_hook(previous):
    """`sys.excepthook` saying in one line that memory ran out (a MemoryError, or a library
    that could not be mapped in under `ulimit -v`), where the traceback would run through the
    imports; every other uncaught exception goes to `previous`. JAX's own allocation failures
    abort inside XLA, past any hook."""

    def hook(kind, error, traceback):
        text = str(error).strip().splitlines()[0] if str(error).strip() else kind.__name__
        mapped = isinstance(error, ImportError) and "failed to map segment" in text
        if not (isinstance(error, MemoryError) or mapped):
            return previous(kind, error, traceback)
        main = sys.modules.get("__main__")
        module = getattr(getattr(main, "__spec__", None), "name", None)
        prog = f"python -m {module}" if module else "python"
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        fix = (
            f"this process may use {limit / 2**30:.1f} GiB of address space (ulimit -v): raise "
            "that limit, or train fewer members at once (--max-members)"
            if limit != resource.RLIM_INFINITY
            else "free some memory, or train fewer members at once (--max-members)"
        )
        sys.stderr.write(f"{prog}: stopped: out of memory ({text[:200]}); {fix}\n")

    return hook


sys.excepthook = _out_of_memory_hook(sys.excepthook)
