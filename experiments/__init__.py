"""Runnable modules: `python -m experiments.<name>`; those with a `CONFIG` are experiments.

An experiment declares itself by a module-level `CONFIG = Config(...)`; the benchmarks
(`benchmark`, `benchmark_*`) and the tools (`report`, `activations`) have none.
"""

import ast
import difflib
import importlib.abc
import pkgutil
import sys
from pathlib import Path

# The tutorial's MNIST experiments, in its order: what the report reproduces.
MNIST_EXPERIMENTS = (
    "softmax",
    "five_layer_sigmoid",
    "five_layer_relu",
    "five_layer_relu_dropout",
    "five_layer_relu_lrdecay",
    "five_layer_relu_lrdecay_dropout",
)


def find_experiments() -> list[str]:
    """Every module of this package that assigns `CONFIG` at its top level, read from its
    parsed source, so nothing is imported."""
    folder = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(folder)])
        if not m.ispkg and declares_config((folder / f"{m.name}.py").read_text())
    )


def declares_config(source: str) -> bool:
    """Whether the module `source` assigns `CONFIG` at its top level (plain or annotated)."""
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "CONFIG" for t in targets):
            return True
    return False


def suggestion(name: str, choices: list[str]) -> str:
    """`did you mean five_layer_relu? ` for a misspelt `name`, or nothing when none is near."""
    near = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean {near[0]}? " if near else ""


class _MisspeltModule(importlib.abc.MetaPathFinder):
    """Answers `python -m experiments.NAME` for a NAME that is no module here with one line and
    a suggestion, where Python would say only "No module named". It acts only while `-m` looks
    for its module (`sys.argv[0]` is then "-m"), and only for this package's direct modules,
    after every other finder has found nothing."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if sys.argv[:1] != ["-m"] or package != __name__ or not name or "." in name:
            return None
        runnable = [m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])]
        sys.stderr.write(
            f"python -m {fullname}: error: no module {name} in experiments; "
            f"{suggestion(name, runnable)}experiments: {', '.join(find_experiments())}\n"
        )
        raise SystemExit(2)


if sys.argv[:1] == ["-m"]:  # `python -m experiments.NAME` is looking for NAME
    sys.meta_path.append(_MisspeltModule())
