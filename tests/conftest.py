"""Shared fixtures: the real MNIST, found where a user keeps it (the report header says where);
JAX set up for short runs (a compilation cache of the session's own, XLA's optimizer mostly
off)."""

import fcntl
import os
from pathlib import Path

import jax
import pytest

from mnist_jax import compile_cache, data

# The offline copy of the four IDX files beside the repository (absent for most users).
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"

# XLA's optimizer costs more than it saves in runs of a few steps: with it mostly off the suite's
# programs compile about 4x faster and run a few steps slower. Set here and in the environment,
# so the processes the tests start inherit it; JAX_DISABLE_MOST_OPTIMIZATIONS=0 runs the suite on
# fully optimized programs. Tests that need those use the `optimized` fixture.
NO_OPTIMIZATIONS = "JAX_DISABLE_MOST_OPTIMIZATIONS"
os.environ.setdefault(NO_OPTIMIZATIONS, "1")
jax.config.update(
    "jax_disable_most_optimizations",
    os.environ[NO_OPTIMIZATIONS].strip().lower() in ("1", "true", "t", "yes", "y", "on"),
)


def find_real_mnist() -> tuple[str | None, str]:
    """(where the real MNIST is, which place that was): a data dir named by
    $MNIST_JAX_TEST_DATA_DIR (taken as it is: CI prepares into it), else the first of
    $TFDS_DATA_DIR and ~/tensorflow_datasets that holds it prepared, else the IDX files in
    ../shared/mnist (prepared into a session folder); (None, the places looked at) when none."""
    if named := os.environ.get("MNIST_JAX_TEST_DATA_DIR"):
        return named, "$MNIST_JAX_TEST_DATA_DIR"
    places = [
        ("$TFDS_DATA_DIR", os.environ.get("TFDS_DATA_DIR")),
        ("~/tensorflow_datasets", os.path.expanduser("~/tensorflow_datasets")),
    ]
    for label, place in places:
        if place and data.is_prepared(place):
            return place, label
    if SHARED_MNIST.is_dir():
        return str(SHARED_MNIST), "../shared/mnist, prepared into a session folder"
    return None, f"$MNIST_JAX_TEST_DATA_DIR, {', '.join(p[0] for p in places)}, {SHARED_MNIST}"


NO_REAL_MNIST = "no real MNIST"  # how `mnist_data_dir` skips, found again in the reports


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Says in the final summary line (as a count of its own, as plugins do) that the real-data
    tests did not run and how to run them: `-q` folds away the skip list that says so."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if NO_REAL_MNIST in str(r.longrepr)
    ]
    if skipped:
        terminalreporter.stats[
            "real-MNIST tests did not run (no MNIST found: `python -m mnist_jax.data prepare "
            "FOLDER --data-dir DIR`, then MNIST_JAX_TEST_DATA_DIR=DIR or TFDS_DATA_DIR=DIR)"
        ] = skipped


def pytest_report_header(config) -> str:
    where, which = find_real_mnist()
    if where is None:
        return f"real MNIST: none found (looked at {which}); the real-data tests skip"
    return f"real MNIST: {where} (from {which})"


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory) -> str:
    """A tfds data dir holding the prepared real MNIST (see `find_real_mnist`); skips the test
    when there is none."""
    where, which = find_real_mnist()
    if where is None:
        pytest.skip(f"{NO_REAL_MNIST}: looked at {which}")
    if where != str(SHARED_MNIST):
        return where
    # Prepared once for the whole run: into the folder pytest-xdist's workers share (the
    # session's base folder's parent), the first worker under a lock while the others wait.
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    data_dir = shared / "real_mnist"
    with open(shared / "real_mnist.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not data.is_prepared(str(data_dir)):
            data.prepare(SHARED_MNIST, str(data_dir))
    return str(data_dir)


@pytest.fixture(scope="session", autouse=True)
def session_compile_cache(tmp_path_factory):
    """JAX's persistent compilation cache in a folder of this session, for the tests in this
    process and every process they start (`$MNIST_JAX_COMPILE_CACHE` is inherited).

    A program compiled once is loaded by the next process that needs it, and after
    `jax.clear_caches()` in this one. A folder of the session rather than the user's: a test run
    neither depends on what earlier runs left there nor fills it with test programs, so the
    suite's time is what a fresh checkout sees. JAX keeps the folder it first compiles with, so
    this is set before any test runs.
    """
    path = str(tmp_path_factory.mktemp("jax_compile_cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(compile_cache.ENV_VAR, path)
        assert compile_cache.enable() == path
        yield path


@pytest.fixture
def optimized():
    """XLA's full optimizations for this test: the programs users run, for a run long enough
    that they pay. The in-memory compiled programs are cleared before and after, since JAX does
    not tell them apart by this setting (the persistent cache does)."""
    flag = "jax_disable_most_optimizations"
    before = jax.config.values[flag]
    jax.clear_caches()
    jax.config.update(flag, False)
    yield
    jax.config.update(flag, before)
    jax.clear_caches()
