"""`python -m experiments NAME [flags] [KEY=VALUE ...]`: the same as `python -m experiments.NAME`.

NAME is any module of `experiments/` that defines a `CONFIG`; `python -m experiments NAME --help`
lists the flags they all share.
"""

import runpy
import sys

from experiments import find_experiments, suggestion

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else None
    names = find_experiments()
    choices = ", ".join(names)
    if name in ("-h", "--help"):
        print(f"{__doc__}\nexperiments: {choices}")
        sys.exit(0)
    if name not in names:
        problem = (
            "name an experiment; "
            if name is None
            else f"unknown experiment {name!r}; {suggestion(name, names)}"
        )
        print(f"python -m experiments: error: {problem}choose from {choices}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *sys.argv[2:]]  # The experiment's own flags, as if run directly.
    runpy.run_module(f"experiments.{name}", run_name="__main__", alter_sys=True)
