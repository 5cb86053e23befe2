"""`python -m experiments.benchmark`: see the package's docstring."""

from experiments.benchmark.main import main

if __name__ == "__main__":
    main()
