"""Whole files a run writes at its end (JSON and CSV results, a report, a checkpoint's record):
their destinations checked before any work, each written to a temporary name and renamed.

A reader, a crash or a full disk then never leaves half a file where the old one was, and a
path that cannot be written is refused in seconds rather than after a long run.
"""

import contextlib
import os


class WriteError(OSError):
    """A result file could not be written (full disk, folder gone); one-line message."""


def destination_problem(path: str) -> str | None:
    """Why a file cannot be written at `path`, or None when it can; creates nothing.

    A folder that does not exist yet is judged by its nearest existing parent, which the
    writer creates the missing folders under.
    """
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        return "is a directory, expected a file name"
    if why := length_problem(path):
        return why
    return folder_problem(os.path.dirname(os.path.abspath(path)))


def folder_problem(path: str) -> str | None:
    """Why `path` cannot be written as a folder, or None when it can; creates nothing.

    A folder that does not exist yet is judged by its nearest existing parent.
    """
    if why := length_problem(path):
        return why
    existing = os.path.abspath(path)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{shortened(existing)} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{shortened(existing)} is not writable"
    return None


def length_problem(path: str) -> str | None:
    """Why `path` is too long for the system (a name in it, or the whole), or None."""
    whole = os.path.abspath(path)
    longest = max(whole.split(os.sep), key=len)
    if len(longest.encode()) > NAME_MAX:
        return f"a name in it has {len(longest)} characters, more than the {NAME_MAX} allowed"
    if len(whole.encode()) >= PATH_MAX:
        return f"it has {len(whole)} characters, more than the {PATH_MAX - 1} allowed"
    return None


NAME_MAX, PATH_MAX = 255, 4096  # Linux's and macOS's limits (bytes) on a name and a path


def shortened(path: str, limit: int = 120) -> str:
    """`path` as a message shows it: its start and end when it is longer than `limit`."""
    if len(path) <= limit:
        return path
    return f"{path[: limit // 2]}...{path[-limit // 4 :]} ({len(path)} characters)"


def write_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` whole: a temporary file beside it, synced, then renamed over it.

    On any failure the temporary file is removed and `path` keeps what it held before; the
    error is a `WriteError` naming the file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(text.encode())
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        reason = error.strerror or str(error)
        raise WriteError(f"cannot write {path}: {reason}; what it held before is kept") from None
