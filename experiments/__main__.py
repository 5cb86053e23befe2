"""`python -m experiments NAME [flags]`: the same as `python -m experiments.NAME [flags]`.

NAME is one of the tutorial's MNIST experiments; `python -m experiments NAME --help` lists the
flags they all share.
"""

import runpy
import sys

from experiments import MNIST_EXPERIMENTS

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else None
    choices = ", ".join(MNIST_EXPERIMENTS)
    if name in ("-h", "--help"):
        print(f"{__doc__}\nexperiments: {choices}")
        sys.exit(0)
    if name not in MNIST_EXPERIMENTS:
        problem = "name an experiment" if name is None else f"unknown experiment {name!r}"
        print(f"python -m experiments: error: {problem}; choose from {choices}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *sys.argv[2:]]  # The experiment's own flags, as if run directly.
    runpy.run_module(f"experiments.{name}", run_name="__main__", alter_sys=True)
