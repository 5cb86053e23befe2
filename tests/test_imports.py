"""The package's modules import one another one way: no import circle, counting the imports
made inside functions too (the data layer once had `data` and `mnist_tfds` import each other)."""

import ast
from pathlib import Path

import mnist_jax

PACKAGE = Path(mnist_jax.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports anywhere in it. The packages holding it are left
    out (`mnist_jax`, `mnist_jax.datasets`): Python runs a package before any of its modules,
    whoever imports what."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {name for name in names if name in modules}
    name = _module_name(path)
    return {m for m in found if m != name and not name.startswith(f"{m}.")}


def test_no_import_circle_in_the_package():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph = {_module_name(p): _imports(p, modules) for p in paths}
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import circle: " + " -> ".join([*path, module]))
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert graph["mnist_jax.datasets.loading"] >= {"mnist_jax.datasets.cache"}  # it sees imports
