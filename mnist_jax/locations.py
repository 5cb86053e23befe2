"""Where the modules that registered a run's parts were loaded from, and importing them again.

A checkpoint names the modules that registered its model, dataset, loss or metric
(`run.json`'s `modules`); `run.json`'s `module_files` adds the file each was loaded from. A
process that reads the checkpoint (`evaluate`, `predict`, `mnist_jax.load`, `--resume`) imports
each by name, as it was registered; when that fails (a module of one's own, run from its own
folder, read from another), from the recorded file, saying so in one line.
"""

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable

from mnist_jax import run_json
from mnist_jax.config import ConfigError

MAIN = "__main__"  # a script run as `python path/to/script.py` registers as this


def recorded(modules: list[str]) -> dict[str, str]:
    """The absolute file of each of `modules` loaded in this process (`__main__` too: a script
    run by path), by name; modules without a file (built in, not loaded) are left out."""
    files = {}
    for name in modules:
        module = sys.modules.get(name)
        main = sys.modules.get(MAIN)
        if module is None and main is not None and getattr(main.__spec__, "name", None) == name:
            module = main  # `python -m NAME` runs NAME as `__main__`
        path = getattr(module, "__file__", None)
        if path:
            files[name] = os.path.abspath(path)
    return files


def import_recorded(
    modules: list[str], files: dict[str, str], say: Callable[[str], None] | None = None
) -> None:
    """Imports each of `modules` by name, else from its file in `files`, with `say` told which
    file; refuses in one line a module found neither way, naming both places tried."""
    say = say or (lambda line: print(line, file=sys.stderr))
    for name in modules:
        if name in sys.modules and name != MAIN:
            continue
        if name != MAIN:
            try:
                importlib.import_module(name)
                continue
            except ImportError as error:
                reason = str(error)
        else:
            reason = "a script run by path"
        path = files.get(name)
        if path is None or not os.path.isfile(path):
            where = f"nor from {path} (no such file)" if path else "and the record names no file"
            raise ConfigError(
                f"cannot import {name}, which registered part of this run ({reason}), {where}:"
                " put its folder on PYTHONPATH, or pass --import MODULE"
            )
        try:
            import_file(name, path)
        except ImportError as error:
            raise ConfigError(f"cannot import {name} from {path} ({error})") from None
        say(f"imported {name} from {path} (not importable by name here: {reason})")


def import_for_resume(checkpoint_dir: str | None) -> None:
    """`--resume`: the saved run's modules imported before its settings are read, so a model
    of one's own module resolves from any folder; a missing or damaged record is left to the
    checkpoint's own checks."""
    path = os.path.join(checkpoint_dir or "", "run.json")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return
    if run_json.problem(record) is None:
        import_recorded(record["modules"], record.get("module_files", {}))


def import_file(name: str, path: str) -> None:
    """Imports the module `name` (dotted) from `path`, its package root put at the end of
    `sys.path` so its own imports of siblings work; a script (`__main__`) under its file's
    stem, so its `if __name__ == "__main__"` block does not run."""
    if name == MAIN:
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return
    root = path
    levels = name.count(".") + 1 + (os.path.basename(path) == "__init__.py")
    for _ in range(levels):
        root = os.path.dirname(root)
    if root not in sys.path:
        sys.path.append(root)
    importlib.import_module(name)


def import_modules(names: list[str]) -> None:
    """`--import MODULE,...`: modules that register more (a dataset to evaluate on), by name or
    as a path to a `.py` file."""
    for name in names:
        if name.endswith(".py"):
            if not os.path.isfile(name):
                raise ConfigError(f"--import {name}: no such file")
            import_file(MAIN, os.path.abspath(name))
            continue
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ConfigError(
                f"--import {name}: cannot import it ({error}); put its folder on PYTHONPATH or"
                " give the path of its .py file"
            ) from None
