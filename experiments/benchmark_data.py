"""Seconds to load both MNIST splits into memory with `load_mnist` (target: at most 3 s).

The dataset must be prepared first, e.g. `python -m mnist_jax.data prepare ../shared/mnist
--data-dir D`. Each repeat loads train and test; the first repeat is kept (no warm-up is dropped),
and the median over repeats is printed with the minimum and maximum.

    python -m experiments.benchmark_data [--data-dir D] [--repeats 5]

Measured: median 2.84 s for both splits (min 2.62, max 3.03, 5 repeats) on the 2-core AMD EPYC
development machine, decoding with Pillow; preparing took 7.7 s there.
"""

import argparse
import statistics
import time

from mnist_jax import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="tfds data dir holding mnist (default: tfds')")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        train_images, _ = data.load_mnist("train", data_dir=args.data_dir)
        test_images, _ = data.load_mnist("test", data_dir=args.data_dir)
        seconds.append(time.perf_counter() - start)
    print(
        f"load_mnist train {train_images.shape} + test {test_images.shape}:"
        f" median {statistics.median(seconds):.2f} s over {args.repeats} repeats"
        f" (min {min(seconds):.2f}, max {max(seconds):.2f}; target <= 3 s)"
    )


if __name__ == "__main__":
    main()
