"""Orbax's failures told in one line: its own reports kept quiet, the cause in the system's words
(tensorstore's messages run to kilobytes of its settings)."""

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Orbax's own reports of a failed write or read kept off stderr: its threads log the error
    at length (absl), and tensorstore's callbacks raise "Event loop is closed" into loops orbax
    already closed. The caller reports the failure in one line. After a failure they stay
    quiet for the rest of the process, since orbax's threads may report it later still."""
    absl, hook = logging.getLogger("absl"), sys.unraisablehook
    level = absl.level
    absl.setLevel(logging.CRITICAL)

    def drop_closed_loops(unraisable) -> None:
        if not (isinstance(unraisable.exc_value, RuntimeError) and closed(unraisable.exc_value)):
            hook(unraisable)

    sys.unraisablehook = drop_closed_loops
    yield  # an exception leaves both in place
    absl.setLevel(level)
    sys.unraisablehook = hook


def closed(error: RuntimeError) -> bool:
    return str(error) == "Event loop is closed"


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
