"""`python -m experiments.report`: see the package's docstring."""

from experiments.report.main import main

if __name__ == "__main__":
    main()
