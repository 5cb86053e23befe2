"""What the optional metrics cost: `five_layer_relu`'s compiled epoch with no optional metric,
with `metrics=[grad_norm]` (computed at every step), `metrics=[weight_norm]` (once an epoch)
and both, interleaved round after round in one process (each variant its own program).

Prints each variant's median compiled-epoch seconds over the rounds (each round's first epoch,
which compiles, dropped) and its ratio to the plain epoch. No logs are written: the epoch alone.

    python -m experiments.benchmark_metrics [--data-dir D] [--epochs 3] [--rounds 3]

Measured: see the README's "Metrics" section (the command above, its machine and load).
"""

import argparse
import statistics

import mnist_jax
from experiments.five_layer_relu import CONFIG

VARIANTS = {
    "none": [],
    "grad_norm": ["metrics=[grad_norm]"],
    "weight_norm": ["metrics=[weight_norm]"],
    "both": ["metrics=[weight_norm,grad_norm]"],
}


def epoch_seconds(overrides: list[str], epochs: int, data_dir: str | None) -> list[float]:
    """The compiled seconds of every epoch after the first."""
    result = mnist_jax.train_and_evaluate(
        CONFIG, [f"epochs={epochs}", *overrides], data_dir=data_dir, logdir=None
    )
    return [e.seconds for e in result.runs[0].history[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--epochs", type=int, default=3, help="per run, the first dropped")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs takes at least 2: the first, which compiles, is dropped")
    seconds = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, overrides in VARIANTS.items():
            seconds[name] += epoch_seconds(overrides, args.epochs, args.data_dir)
    plain = statistics.median(seconds["none"])
    print(f"five_layer_relu, median compiled epoch over {args.rounds} interleaved rounds:")
    for name, values in seconds.items():
        median = statistics.median(values)
        spread = f"{min(values):.3f}-{max(values):.3f}"
        print(f"  {name:<12} {median:.3f} s ({median / plain:.3f} x; epochs ranged {spread} s)")


if __name__ == "__main__":
    main()
