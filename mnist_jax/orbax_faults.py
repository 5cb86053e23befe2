"""What a failed orbax save or restore leaves, put right: its temporary folder removed, its
threads' reports kept off stderr, and the failure said in a few words with the way on."""

import contextlib
import errno
import glob
import logging
import os
import re
import resource
import shutil
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_orbax() -> Iterator[None]:
    """Orbax's own reports of a failed write or read kept off stderr: its threads log the error
    at length (absl), and tensorstore's callbacks raise "Event loop is closed" into loops orbax
    already closed. The caller reports the failure in one line. After a failure they stay
    quiet for the rest of the process, since orbax's threads may report it later still."""
    absl, hook, filters = logging.getLogger("absl"), sys.unraisablehook, warnings.filters[:]
    level = absl.level
    absl.setLevel(logging.CRITICAL)
    # Its coroutines that a failed write left unstarted, reported when they are collected.
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)

    def drop_closed_loops(unraisable) -> None:
        if not loop_noise(unraisable):
            hook(unraisable)

    sys.unraisablehook = drop_closed_loops
    yield  # an exception leaves all three in place
    absl.setLevel(level)
    sys.unraisablehook = hook
    warnings.filters[:] = filters


def loop_noise(unraisable) -> bool:
    """An event loop of orbax's that was closed, or never whole (made with no file descriptor
    left for its self-pipe), complaining as it is collected."""
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
        return True
    return isinstance(error, AttributeError) and "EventLoop" in repr(unraisable.object)


def os_error(error: Exception) -> str | None:
    """The system's words for the file error behind `error`, if one is."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    code = re.search(r"os_error_code='(\d+)'", str(error))
    return os.strerror(int(code.group(1))) if code else None


def reason(error: Exception) -> str:
    """The cause in a few words: tensorstore's messages run to kilobytes of its settings."""
    if why := os_error(error):
        return why
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def remove_partial(path: str, epoch: int) -> None:
    """Removes what a failed save of `epoch` left in `path` (orbax's temporary folder), freeing
    its space. A save that failed for want of file descriptors leaves none for the removal, so
    the soft limit on open files is raised to the hard one meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        for partial in glob.glob(os.path.join(path, f"{epoch}.orbax-checkpoint-tmp*")):
            shutil.rmtree(partial, ignore_errors=True)
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# What to fix before resuming, by the system's words for the failure.
FIXES = {
    os.strerror(errno.ENOSPC): "once the disk has room",
    os.strerror(errno.EDQUOT): "once the disk has room",
    os.strerror(errno.EMFILE): "with more files allowed open (a higher `ulimit -n`)",
    os.strerror(errno.ENFILE): "once the system has fewer files open",
}


def intact(saved_epochs, epoch: int, error: Exception) -> str:
    """What is left after epoch `epoch` failed to save, and how to go on from it."""
    earlier = [e for e in saved_epochs if e < epoch]
    left = (
        f"the checkpoint of epoch {max(earlier)} is intact"
        if earlier
        else "no earlier epoch of these members is saved"
    )
    fix = FIXES.get(os_error(error), "once its cause is fixed")
    return f"{left}: {fix}, run the same command again with --resume"
