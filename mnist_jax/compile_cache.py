"""JAX's persistent compilation cache, on by default, so a second run does not compile again.

`enable()` points JAX at a per-user folder before anything is compiled; each compiled program is
then written there and a later process with the same program, shapes, JAX version and machine
loads it instead of compiling. The folder is, first found:

    $MNIST_JAX_COMPILE_CACHE            a folder of your choosing
    $XDG_CACHE_HOME/mnist_jax/jax
    ~/.cache/mnist_jax/jax

`MNIST_JAX_COMPILE_CACHE=off` turns the cache off. Deleting the folder is always safe; it is
not size-limited (one experiment's programs take about 0.3 MB). A folder that cannot be created
or written to costs one note on stderr, never the run. Anyone who can write to the folder can
make your JAX processes run their code, so do not point it at a folder shared with others.
"""

import os
import sys
import tempfile
from pathlib import Path

import jax

ENV_VAR = "MNIST_JAX_COMPILE_CACHE"
OFF = "off"


def cache_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The folder `enable()` would use under `environ` (default os.environ); None when off."""
    env = os.environ if environ is None else environ
    chosen = env.get(ENV_VAR, "").strip()
    if chosen.lower() == OFF:
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "mnist_jax" / "jax"


def _check_writable(path: Path) -> None:
    """Create `path` and write a file in it; raises OSError when either fails."""
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass


def enable() -> str | None:
    """Turn the persistent cache on; the folder used, or None when off. Call before compiling."""
    path = cache_dir()
    if path is None:
        return None
    try:
        _check_writable(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"note: JAX compilation cache off: {path} is not writable ({reason})", file=sys.stderr
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    # JAX caches only programs that took at least 1 s to compile (the default); each of this
    # project's CPU programs compiles in well under that, so none would be cached.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # No lower bound on an entry's size: -1 rather than the default 0, which JAX may raise to
    # a filesystem-dependent minimum.
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return str(path)
