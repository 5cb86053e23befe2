"""Runnable modules: `python -m experiments.<name>`; those with a `CONFIG` are experiments.

An experiment declares itself by a module-level `CONFIG = Config(...)`; the benchmarks
(`benchmark`, `benchmark_*`) and the tools (`report`, `activations`) have none.
"""

import ast
import pkgutil
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
