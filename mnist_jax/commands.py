"""Commands shown in messages, spelled so that pasting them runs the interpreter running now.

`python -m mnist_jax.data prepare ...` pasted outside the virtual environment that ran it fails
with `No module named ...`: a message names `sys.executable` instead, whenever it is not the
`python` found first on `PATH`.
"""

import os
import shlex
import shutil
import sys


def python() -> str:
    """`python` when that is this interpreter (the same file in the same folder: a venv's python
    is a link to the system's, but not the same environment), else `sys.executable` as it is."""
    found = shutil.which("python")
    here = sys.executable
    if (
        found
        and here
        and os.path.dirname(os.path.abspath(found)) == os.path.dirname(os.path.abspath(here))
    ):
        try:
            if os.path.samefile(found, here):
                return "python"
        except OSError:
            pass
    return here or "python"


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def python_module(module: str, *args: str) -> str:
    """`python -m MODULE ARGS...` as a shell would take it, with this interpreter."""
    return shlex.join([python(), "-m", module, *args])


def tensorboard(logdir: str) -> str:
    """The command that shows `logdir`: TensorBoard's script beside this interpreter when that
    is the `python` on `PATH`, else its module run by this interpreter."""
    if python() == "python":
        return shlex.join(["tensorboard", "--logdir", logdir])
    return python_module("tensorboard.main", "--logdir", logdir)
